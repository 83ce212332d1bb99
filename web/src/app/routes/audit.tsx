import { Button, FormAlert, Loading, LoadMore, PageHeader, StatusMessage } from '../../components/ui';
import { getAuditEvents, type AuditEvent } from '../../features/audit/api/get-audit-events';
import { AuditTable } from '../../features/audit/components/audit-table';
import { usePagedList } from '../../lib/use-paged-list';

const PAGE_SIZE = 50;
const cursorOf = (event: AuditEvent): string => String(event.id);

/** Loaded lazily: only system admins ever download this page. */
export default function AuditRoute() {
  const list = usePagedList(getAuditEvents, cursorOf, PAGE_SIZE, 'events');

  return (
    <>
      <PageHeader title="Audit log">
        <Button variant="secondary" pending={list.pending} onClick={list.refresh}>
          Refresh
        </Button>
      </PageHeader>
      <section class="card">
        <p>Sign-ins, password resets, user and settings changes, newest first.</p>
        <StatusMessage>{list.announcement}</StatusMessage>
        <FormAlert>{list.error}</FormAlert>
        {list.items === null ? (
          list.error === '' && <Loading label="Loading events…" />
        ) : list.items.length === 0 ? (
          <p>No events yet.</p>
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
