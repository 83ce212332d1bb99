// An SMTP server on 127.0.0.1 that accepts every message and discards it, counting only:
// no TLS, no AUTH, no parsing. Its acceptance rate is the ceiling for email delivery.
// While collecting is on ({ cmd: 'collect', on: true }), it also keeps the reset token of each
// message (`reset-password#token=<43 chars>` in its text part), the last one per recipient:
// { cmd: 'tokens' } answers [{ to, token }].
import { SMTPServer } from 'smtp-server';

// connections: opened since the last reset; peakOpen: most open at once (a pool's real size)
const state = { count: 0, bytes: 0, firstAtMs: 0, lastAtMs: 0, connections: 0, peakOpen: 0 };
let open = 0;
/** @type {Map<string, string> | undefined} recipient → last token seen, while collecting */
let tokens;

const TOKEN = /reset-password#token=([A-Za-z0-9_-]{43})(?![A-Za-z0-9_-])/;

/** The body as a reader sees it: quoted-printable soft line breaks and =XX escapes undone. */
function decodeQuotedPrintable(raw) {
  return raw.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/g, (_, hex) => String.fromCharCode(parseInt(hex, 16)));
}

/** The token in a raw message, whether its text part is quoted-printable, base64 or plain. */
export function tokenOf(raw) {
  const plain = decodeQuotedPrintable(raw).match(TOKEN);
  if (plain) return plain[1];
  for (const block of raw.split(/\r?\n\r?\n/)) {
    if (!/^[A-Za-z0-9+/=\r\n]{40,}$/.test(block.trim())) continue;
    const found = Buffer.from(block.replace(/\s+/g, ''), 'base64').toString('utf8').match(TOKEN);
    if (found) return found[1];
  }
  return undefined;
}

const server = new SMTPServer({
  authOptional: true,
  disabledCommands: ['STARTTLS', 'AUTH'],
  logger: false,
  size: 1024 * 1024,
  // A pooled client's idle connection must not hold close() up.
  closeTimeout: 50,
  onConnect(_session, callback) {
    state.connections++;
    open++;
    if (open > state.peakOpen) state.peakOpen = open;
    callback();
  },
  onClose() {
    open--;
  },
  onData(stream, session, callback) {
    /** @type {Buffer[] | undefined} */
    const chunks = tokens === undefined ? undefined : [];
    stream.on('data', (chunk) => {
      state.bytes += chunk.length;
      chunks?.push(chunk);
    });
    stream.on('end', () => {
      const now = Date.now();
      if (state.count === 0) state.firstAtMs = now;
      state.count++;
      state.lastAtMs = now;
      if (chunks !== undefined && tokens !== undefined) {
        const token = tokenOf(Buffer.concat(chunks).toString('latin1'));
        const to = session.envelope.rcptTo[0]?.address?.toLowerCase();
        if (token !== undefined && to !== undefined) tokens.set(to, token);
      }
      callback();
    });
  },
});
server.on('error', () => {});

process.on('message', (msg) => {
  if (msg?.cmd === 'stats') process.send?.({ id: msg.id, ...state, tokens: tokens?.size });
  if (msg?.cmd === 'reset') {
    Object.assign(state, { count: 0, bytes: 0, firstAtMs: 0, lastAtMs: 0, connections: 0, peakOpen: open });
    process.send?.({ id: msg.id, ok: true });
  }
  if (msg?.cmd === 'collect') {
    tokens = msg.on ? new Map() : undefined;
    process.send?.({ id: msg.id, ok: true });
  }
  if (msg?.cmd === 'tokens') process.send?.({ id: msg.id, tokens: [...(tokens ?? new Map())].map(([to, token]) => ({ to, token })) });
});

server.listen(0, '127.0.0.1', () => {
  const address = /** @type {import('node:net').AddressInfo} */ (server.server.address());
  process.send?.({ ready: true, port: address.port });
});

process.on('SIGTERM', () => server.close(() => process.exit(0)));
process.on('disconnect', () => process.exit(0));
