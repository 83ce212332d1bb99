// An SMTP server on 127.0.0.1 that accepts every message and discards it, counting only:
// no TLS, no AUTH, no parsing. Its acceptance rate is the ceiling for email delivery.
import { SMTPServer } from 'smtp-server';

const state = { count: 0, bytes: 0, firstAtMs: 0, lastAtMs: 0, connections: 0 };

const server = new SMTPServer({
  authOptional: true,
  disabledCommands: ['STARTTLS', 'AUTH'],
  logger: false,
  size: 1024 * 1024,
  // A pooled client's idle connection must not hold close() up.
  closeTimeout: 50,
  onConnect(_session, callback) {
    state.connections++;
    callback();
  },
  onData(stream, _session, callback) {
    stream.on('data', (chunk) => (state.bytes += chunk.length));
    stream.on('end', () => {
      const now = Date.now();
      if (state.count === 0) state.firstAtMs = now;
      state.count++;
      state.lastAtMs = now;
      callback();
    });
  },
});
server.on('error', () => {});

process.on('message', (msg) => {
  if (msg?.cmd === 'stats') process.send?.({ id: msg.id, ...state });
  if (msg?.cmd === 'reset') {
    Object.assign(state, { count: 0, bytes: 0, firstAtMs: 0, lastAtMs: 0, connections: 0 });
    process.send?.({ id: msg.id, ok: true });
  }
});

server.listen(0, '127.0.0.1', () => {
  const address = /** @type {import('node:net').AddressInfo} */ (server.server.address());
  process.send?.({ ready: true, port: address.port });
});

process.on('SIGTERM', () => server.close(() => process.exit(0)));
process.on('disconnect', () => process.exit(0));
