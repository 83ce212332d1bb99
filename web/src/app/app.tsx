import { Layout } from './layout';
import { AppRouter } from './router';
import { SessionProvider } from './session';

export function App() {
  return (
    <SessionProvider>
      <Layout>
        <AppRouter />
      </Layout>
    </SessionProvider>
  );
}
