// Scenario 1: the bare endpoint Gatehouse's forgot-password is compared with. Fastify 5, its
// default JSON parser, one POST route, the same 202 body; no logger, no hooks, no database.
import Fastify from 'fastify';

const ACCEPTED = { message: 'If an account uses this address, an email with a link to reset the password is on its way.' };

const app = Fastify({ logger: false });
app.post('/api/auth/forgot-password', async (request, reply) => {
  const body = /** @type {{ email?: unknown }} */ (request.body);
  if (typeof body?.email !== 'string') return reply.code(400).send({ error: 'invalid_request', message: 'email is required' });
  return reply.code(202).send(ACCEPTED);
});

// The timing control: the same answer, 1 ms later for a known address (a busy wait, so a real
// 1 ms of work on the request path, as a database write would be). The timing scenario must see it.
const KNOWN = /^bench-user-\d+@example\.com$/;
app.post('/control/forgot', async (request, reply) => {
  const body = /** @type {{ email?: unknown }} */ (request.body);
  if (typeof body?.email !== 'string') return reply.code(400).send({ error: 'invalid_request', message: 'email is required' });
  if (KNOWN.test(body.email)) {
    const until = performance.now() + 1;
    while (performance.now() < until) {
      // busy: 1 ms of CPU
    }
  }
  return reply.code(202).send(ACCEPTED);
});

await app.listen({ port: 0, host: '127.0.0.1' });
const address = /** @type {import('node:net').AddressInfo} */ (app.server.address());
process.send?.({ ready: true, port: address.port });

process.on('SIGTERM', () => {
  app.close().finally(() => process.exit(0));
});
// The parent's IPC channel closing means the bench is gone: do not outlive it.
process.on('disconnect', () => process.exit(0));
