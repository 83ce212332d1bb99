import { Button, FormAlert, Loading, LoadMore, PageHeader, StatusMessage } from '../../components/ui';
import { getDeliveries, type Delivery } from '../../features/mail/api/get-deliveries';
import { DeliveriesTable } from '../../features/mail/components/deliveries-table';
import { DeliveryTargetLine } from '../../features/mail/components/delivery-target-line';
import { usePagedList } from '../../lib/use-paged-list';

const PAGE_SIZE = 50;
const cursorOf = (delivery: Delivery): string => delivery.id;

/** Loaded lazily: only system admins ever download this page. */
export default function MailRoute() {
  const list = usePagedList(getDeliveries, cursorOf, PAGE_SIZE, 'deliveries');

  return (
    <>
      <PageHeader title="Mail deliveries">
        <Button variant="secondary" pending={list.pending} onClick={list.refresh}>
          Refresh
        </Button>
      </PageHeader>
      <section class="card">
        <p>
          Every email Gatehouse sends, newest first, with its last error. The messages themselves and their links are not kept once
          delivered. Destination says where each went: the dev mailbox, or your mail server.
        </p>
        <DeliveryTargetLine />
        <StatusMessage>{list.announcement}</StatusMessage>
        <FormAlert>{list.error}</FormAlert>
        {list.items === null ? (
          list.error === '' && <Loading label="Loading deliveries…" />
        ) : list.items.length === 0 ? (
          <p>No emails yet.</p>
        ) : (
          <>
            <DeliveriesTable deliveries={list.items} />
            <LoadMore hasMore={list.hasMore} pending={list.pending} onLoadMore={list.loadMore} endText="That is the oldest delivery." />
          </>
        )}
      </section>
    </>
  );
}
