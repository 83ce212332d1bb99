import { Route, Switch } from 'wouter-preact';
import { RequireSession } from './guards';
import { lazyRoute } from './lazy-route';
import { ChangePasswordRoute } from './routes/change-password';
import { ForgotPasswordRoute } from './routes/forgot-password';
import { HomeRoute } from './routes/home';
import { LoginRoute } from './routes/login';
import { NotFoundRoute } from './routes/not-found';
import { ResetPasswordRoute } from './routes/reset-password';

// Admin pages are separate chunks: the pages a signed-out person sees stay small (DESIGN §3).
const UsersRoute = lazyRoute(() => import('./routes/users'));
const SettingsRoute = lazyRoute(() => import('./routes/settings'));
const MailRoute = lazyRoute(() => import('./routes/mail'));
const AuditRoute = lazyRoute(() => import('./routes/audit'));
// Every signed-in user's own page, yet not needed to sign in: its own chunk too.
const AccountRoute = lazyRoute(() => import('./routes/account'));
// Public (a signed-out person reads their reset email there), yet still its own chunk.
const DevMailboxRoute = lazyRoute(() => import('./routes/dev-mailbox'));

export function AppRouter() {
  return (
    <Switch>
      {/* Signed-out pages render at once, without waiting for the session check. */}
      <Route path="/login" component={LoginRoute} />
      <Route path="/forgot-password" component={ForgotPasswordRoute} />
      <Route path="/reset-password" component={ResetPasswordRoute} />
      <Route path="/change-password">
        <RequireSession allowPasswordChangeRequired>
          <ChangePasswordRoute />
        </RequireSession>
      </Route>
      <Route path="/">
        <RequireSession>
          <HomeRoute />
        </RequireSession>
      </Route>
      <Route path="/users">
        <RequireSession admin>
          <UsersRoute />
        </RequireSession>
      </Route>
      <Route path="/settings">
        <RequireSession admin>
          <SettingsRoute />
        </RequireSession>
      </Route>
      <Route path="/mail">
        <RequireSession admin>
          <MailRoute />
        </RequireSession>
      </Route>
      <Route path="/audit">
        <RequireSession admin>
          <AuditRoute />
        </RequireSession>
      </Route>
      <Route path="/account">
        <RequireSession>
          <AccountRoute />
        </RequireSession>
      </Route>
      <Route path="/dev/mailbox">
        <DevMailboxRoute />
      </Route>
      <Route component={NotFoundRoute} />
    </Switch>
  );
}
