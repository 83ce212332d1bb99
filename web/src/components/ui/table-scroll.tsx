import type { ComponentChildren } from 'preact';

/**
 * A wide table's horizontal scroller. It is a named, focusable region so keyboard users can
 * scroll it with the arrow keys when it holds nothing else to focus (WCAG 2.1.1).
 */
export function TableScroll({ label, children }: { label: string; children: ComponentChildren }) {
  return (
    <div class="table-scroll" role="region" aria-label={label} tabIndex={0}>
      {children}
    </div>
  );
}
