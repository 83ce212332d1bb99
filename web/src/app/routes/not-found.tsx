import { Link } from 'wouter-preact';
import { PageHeader } from '../../components/ui';

export function NotFoundRoute() {
  return (
    <section class="card card-narrow">
      <PageHeader title="Page not found" />
      <p>There is no page at this address. Check the address, or start again from the home page.</p>
      <p>
        <Link href="/" class="link">
          Go to the home page
        </Link>
      </p>
    </section>
  );
}
