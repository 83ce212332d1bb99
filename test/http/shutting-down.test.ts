import net from 'node:net';
import { afterEach, expect, it } from 'vitest';
import { makeTestApp, type TestContext } from '../helpers/app.js';

// While the server shuts down, a request that still arrives on an open connection (pipelined, or
// on a keep-alive connection busy with a request under way) is refused at once in our error
// shape, and the connection with it; the request under way gets its normal answer.

let ctx: TestContext | undefined;
afterEach(async () => {
  await ctx?.close().catch(() => undefined);
  ctx = undefined;
});

it('answers a request arriving during shutdown 503 shutting_down with Retry-After and Connection: close, after the one under way', async () => {
  ctx = await makeTestApp();
  await ctx.app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = ctx.app.server.address() as net.AddressInfo;

  const socket = net.connect(port, '127.0.0.1');
  let received = '';
  socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
  const ended = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));

  // A sign-in whose body has not arrived yet: the request is under way.
  const body = JSON.stringify({ login: 'nobody', password: 'not the password at all' });
  socket.write(`POST /api/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`);
  await new Promise((resolve) => setTimeout(resolve, 100));

  const closed = ctx.app.close();
  await new Promise((resolve) => setTimeout(resolve, 50));
  // Its body, and right behind it a second request on the same connection.
  socket.write(`${body}GET /api/auth/me HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
  await ended;
  await closed;

  const answers = received.split(/(?=HTTP\/1\.1 )/);
  expect(answers).toHaveLength(2);
  expect(answers[0]).toMatch(/^HTTP\/1\.1 401 /);
  expect(answers[0]).toContain('"error":"invalid_credentials"');
  expect(answers[1]).toMatch(/^HTTP\/1\.1 503 /);
  expect(answers[1]).toMatch(/\r\nretry-after: 1\r\n/i);
  expect(answers[1]).toMatch(/\r\nconnection: close\r\n/i);
  const json = JSON.parse(answers[1]!.slice(answers[1]!.indexOf('\r\n\r\n') + 4)) as unknown;
  expect(json).toEqual({ error: 'shutting_down', message: 'The server is shutting down. Try again.' });
  ctx = undefined;
});
