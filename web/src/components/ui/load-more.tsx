import { useEffect, useRef, useState } from 'preact/hooks';
import { Button } from './button';

export interface LoadMoreProps {
  hasMore: boolean;
  pending: boolean;
  onLoadMore: () => void;
  /** said once the oldest item is shown, e.g. "That is the oldest event." */
  endText: string;
}

/**
 * "Load more" under a newest-first list. When the last page arrives the button goes away, so
 * focus moves to the sentence that replaces it rather than falling back to the page's start.
 */
export function LoadMore({ hasMore, pending, onLoadMore, endText }: LoadMoreProps) {
  const [used, setUsed] = useState(false);
  const endRef = useRef<HTMLParagraphElement>(null);
  const hadFocus = useRef(false);

  useEffect(() => {
    if (!hasMore && hadFocus.current) endRef.current?.focus();
    hadFocus.current = false;
  }, [hasMore]);

  if (!hasMore) {
    return used ? (
      <p ref={endRef} tabIndex={-1} class="muted list-end">
        {endText}
      </p>
    ) : null;
  }
  return (
    <div class="form-actions list-more">
      <Button
        variant="secondary"
        pending={pending}
        pendingLabel="Loading…"
        onClick={(event) => {
          hadFocus.current = event.currentTarget === document.activeElement;
          setUsed(true);
          onLoadMore();
        }}
      >
        Load more
      </Button>
    </div>
  );
}
