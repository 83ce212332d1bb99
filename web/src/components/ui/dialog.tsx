import type { ComponentChildren } from 'preact';
import { useEffect, useId, useRef } from 'preact/hooks';

export interface DialogProps {
  title: string;
  /** alertdialog for confirmations that need an answer */
  role?: 'dialog' | 'alertdialog';
  onClose: () => void;
  children: ComponentChildren;
}

/**
 * A modal on the native <dialog>: the browser traps focus, closes it on Escape and hides
 * the rest of the page from assistive technology. Mounted = open.
 */
export function Dialog({ title, role = 'dialog', onClose, children }: DialogProps) {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  const onCloseRef = useRef(onClose);
  onCloseRef.current = onClose;

  useEffect(() => {
    const dialog = ref.current;
    if (dialog === null) return;
    // Focus returns to whatever opened the dialog once it closes.
    const opener = document.activeElement instanceof HTMLElement ? document.activeElement : null;
    dialog.showModal();
    const handleClose = (): void => onCloseRef.current();
    dialog.addEventListener('close', handleClose);
    return () => {
      dialog.removeEventListener('close', handleClose);
      if (dialog.open) dialog.close();
      // After the page has re-rendered: when the opener is gone (its row was deleted), the page
      // heading takes focus rather than <body>.
      window.setTimeout(() => {
        const target = opener?.isConnected ? opener : document.querySelector<HTMLElement>('main h1');
        target?.focus();
      });
    };
  }, []);

  return (
    <dialog ref={ref} class="dialog" role={role === 'alertdialog' ? 'alertdialog' : undefined} aria-labelledby={titleId} aria-modal="true">
      <h2 id={titleId} class="dialog-title">
        {title}
      </h2>
      {children}
    </dialog>
  );
}
