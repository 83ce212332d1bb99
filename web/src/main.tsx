import { render } from 'preact';
import { App } from './app/app';
import './styles/app.css';

// The server serves "/users/" like "/users"; the router matches exact paths.
const { pathname, search, hash } = window.location;
if (pathname.length > 1 && pathname.endsWith('/')) {
  window.history.replaceState(window.history.state, '', pathname.replace(/\/+$/, '') + search + hash);
}

render(<App />, document.getElementById('app')!);
