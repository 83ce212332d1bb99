import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { describeError } from './api';

export interface PagedList<T> {
  /** null until the first page has arrived */
  items: T[] | null;
  /** the last failure, as a sentence; '' when the last request worked */
  error: string;
  /** a request is running */
  pending: boolean;
  /** the last page was full, so there may be more */
  hasMore: boolean;
  /** what changed, for a polite live region ("Loaded 50 more.") */
  announcement: string;
  loadMore: () => void;
  refresh: () => void;
}

/**
 * A newest-first list paged with `before` (the last item's cursor): the first page on mount,
 * "Load more" appends, Refresh starts again from the newest.
 */
export function usePagedList<T>(
  fetchPage: (options: { limit: number; before?: string | undefined }) => Promise<T[]>,
  cursorOf: (item: T) => string,
  pageSize: number,
  /** names the items in announcements, e.g. "events" */
  noun: string,
): PagedList<T> {
  const [items, setItems] = useState<T[] | null>(null);
  const [error, setError] = useState('');
  const [pending, setPending] = useState(false);
  const [hasMore, setHasMore] = useState(false);
  const [announcement, setAnnouncement] = useState('');
  // A newer request wins: an older answer arriving late must not overwrite it.
  const generation = useRef(0);
  const itemsRef = useRef<T[] | null>(null);
  itemsRef.current = items;

  const load = useCallback(
    async (mode: 'first' | 'more' | 'refresh'): Promise<void> => {
      const current = itemsRef.current;
      const last = mode === 'more' && current !== null && current.length > 0 ? current[current.length - 1] : undefined;
      const run = ++generation.current;
      setPending(true);
      setError('');
      if (mode !== 'first') setAnnouncement('');
      try {
        const page = await fetchPage({ limit: pageSize, before: last === undefined ? undefined : cursorOf(last) });
        if (run !== generation.current) return;
        setItems(mode === 'more' ? [...(current ?? []), ...page] : page);
        setHasMore(page.length === pageSize);
        if (mode === 'more') setAnnouncement(page.length === 0 ? `No more ${noun}.` : `Loaded ${page.length} more ${noun}.`);
        if (mode === 'refresh') setAnnouncement(`Refreshed: ${page.length === 0 ? `no ${noun}` : `the newest ${page.length} ${noun}`}.`);
      } catch (err) {
        if (run === generation.current) setError(describeError(err));
      } finally {
        if (run === generation.current) setPending(false);
      }
    },
    [fetchPage, cursorOf, pageSize, noun],
  );

  useEffect(() => {
    void load('first');
  }, [load]);

  return {
    items,
    error,
    pending,
    hasMore,
    announcement,
    loadMore: () => void load('more'),
    refresh: () => void load('refresh'),
  };
}
