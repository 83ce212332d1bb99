import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { Button, FormAlert, Loading, LoadMore, PageHeader, StatusMessage } from '../../components/ui';
import { AUDIT_EXPORT_MAX_ROWS, auditExportUrl } from '../../features/audit/api/audit-export-url';
import { getAuditEvents, type AuditEvent, type AuditFilter } from '../../features/audit/api/get-audit-events';
import { AuditFilters } from '../../features/audit/components/audit-filters';
import { AuditTable } from '../../features/audit/components/audit-table';
import { ApiError } from '../../lib/api';
import { usePagedList } from '../../lib/use-paged-list';

const PAGE_SIZE = 50;
const cursorOf = (event: AuditEvent): string => String(event.id);
const isFiltered = (filter: AuditFilter): boolean => Object.values(filter).some((v) => v !== undefined);

/** Loaded lazily: only system admins ever download this page. */
export default function AuditRoute() {
  const [filter, setFilter] = useState<AuditFilter>({});
  const [serverErrors, setServerErrors] = useState<Readonly<Record<string, string>>>({});
  const [message, setMessage] = useState('');
  // Set when filters are applied: the next first page says how many events match.
  const announceNext = useRef<'applied' | 'cleared' | null>(null);

  const fetchPage = useCallback(
    async (options: { limit: number; before?: string | undefined }): Promise<AuditEvent[]> => {
      try {
        const events = await getAuditEvents(filter, options);
        setServerErrors({});
        const announce = announceNext.current;
        if (options.before === undefined && announce !== null) {
          announceNext.current = null;
          setMessage(announce === 'cleared' ? 'Filters cleared: showing all events.' : matchingText(events.length));
        }
        return events;
      } catch (err) {
        setServerErrors(err instanceof ApiError ? err.fields : {});
        throw err;
      }
    },
    [filter],
  );
  const list = usePagedList(fetchPage, cursorOf, PAGE_SIZE, 'events');

  useEffect(() => {
    if (list.announcement !== '') setMessage(list.announcement);
  }, [list.announcement]);

  const filtered = isFiltered(filter);
  const apply = (next: AuditFilter) => {
    announceNext.current = isFiltered(next) ? 'applied' : 'cleared';
    setMessage('');
    setFilter(next);
  };

  return (
    <>
      <PageHeader title="Audit log">
        <Button variant="secondary" pending={list.pending} onClick={list.refresh}>
          Refresh
        </Button>
      </PageHeader>
      <section class="card">
        <p>Sign-ins, password resets, user and settings changes, newest first.</p>
        <AuditFilters onApply={apply} serverErrors={serverErrors} />
        <div class="audit-summary">
          <p id="audit-export-note" class="muted">
            Export CSV downloads every event that matches the filters, not only those loaded here (at most the newest {AUDIT_EXPORT_MAX_ROWS.toLocaleString('en')}).
          </p>
          <a class="button button-secondary" href={auditExportUrl(filter)} download aria-describedby="audit-export-note">
            Export CSV
          </a>
        </div>
        <StatusMessage>{message}</StatusMessage>
        <FormAlert>{list.error}</FormAlert>
        {list.items === null ? (
          list.error === '' && <Loading label="Loading events…" />
        ) : list.items.length === 0 ? (
          <p>{filtered ? 'No events match these filters.' : 'No events yet.'}</p>
        ) : (
          <>
            <AuditTable events={list.items} />
            <LoadMore hasMore={list.hasMore} pending={list.pending} onLoadMore={list.loadMore} endText="That is the oldest event." />
          </>
        )}
      </section>
    </>
  );
}

function matchingText(count: number): string {
  if (count === 0) return 'No events match these filters.';
  if (count === PAGE_SIZE) return `Showing the newest ${count} matching events; Load more shows older ones.`;
  return count === 1 ? '1 event matches the filters.' : `${count} events match the filters.`;
}
