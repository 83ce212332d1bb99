import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';

// The one way the tests reach the app over a real socket: `listenRaw` for answers as they crossed
// the wire (header order, bytes), `rawHttp` for requests no HTTP client would send.

/** A response as it crossed the wire: status, header names in order, header values and body bytes. */
export interface RawResponse {
  status: number;
  /** lower-cased, in the order the server sent them */
  headerNames: string[];
  headers: Record<string, string>;
  body: Buffer;
}

export interface RawClient {
  url: string;
  request(method: string, path: string, options?: { json?: unknown; headers?: Record<string, string> }): Promise<RawResponse>;
  post(path: string, json: unknown, headers?: Record<string, string>): Promise<RawResponse>;
  /** `request` written as it stands on a new connection (see rawHttp) */
  send(request: string): Promise<string>;
  close(): void;
}

/** Writes `request` byte for byte to 127.0.0.1:port and resolves with everything the server sent until it closed the connection. */
export function rawHttp(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(request));
    let out = '';
    socket.on('data', (d) => (out += String(d)));
    socket.on('end', () => resolve(out));
    socket.on('error', reject);
  });
}

/** Starts the app on an ephemeral port of 127.0.0.1 and returns a client that keeps one connection alive. */
export async function listenRaw(app: FastifyInstance): Promise<RawClient> {
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as AddressInfo;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const request: RawClient['request'] = (method, path, options = {}) =>
    new Promise((resolve, reject) => {
      const payload = options.json === undefined ? undefined : Buffer.from(JSON.stringify(options.json));
      const headers: Record<string, string> = { ...options.headers };
      if (payload !== undefined) {
        headers['content-type'] ??= 'application/json';
        headers['content-length'] = String(payload.length);
      }
      const req = http.request({ host: '127.0.0.1', port, method, path, agent, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const headerNames: string[] = [];
          const values: Record<string, string> = {};
          for (let i = 0; i < res.rawHeaders.length; i += 2) {
            const name = res.rawHeaders[i]!.toLowerCase();
            headerNames.push(name);
            values[name] = values[name] === undefined ? res.rawHeaders[i + 1]! : `${values[name]}, ${res.rawHeaders[i + 1]!}`;
          }
          resolve({ status: res.statusCode ?? 0, headerNames, headers: values, body: Buffer.concat(chunks) });
        });
      });
      req.on('error', reject);
      req.end(payload);
    });
  return {
    url: `http://127.0.0.1:${port}`,
    request,
    post: (path, json, headers) => request('POST', path, { json, ...(headers ? { headers } : {}) }),
    send: (raw) => rawHttp(port, raw),
    close: () => agent.destroy(),
  };
}

/** Header values that may differ between two otherwise identical answers. */
const VALUE_MAY_DIFFER = new Set(['date', 'x-request-id', 'request-id']);

/**
 * What tells two responses apart, as a printable diff, or '' when an observer cannot tell them apart:
 * same status, same header names in the same order, same header values (apart from the date and a
 * request id), and the same body bytes.
 */
export function responseDifference(a: RawResponse, b: RawResponse): string {
  const out: string[] = [];
  if (a.status !== b.status) out.push(`status ${a.status} ≠ ${b.status}`);
  if (a.headerNames.join(',') !== b.headerNames.join(',')) out.push(`header names [${a.headerNames.join(', ')}] ≠ [${b.headerNames.join(', ')}]`);
  for (const name of new Set([...Object.keys(a.headers), ...Object.keys(b.headers)])) {
    if (VALUE_MAY_DIFFER.has(name)) continue;
    if (a.headers[name] !== b.headers[name]) out.push(`header ${name}: ${JSON.stringify(a.headers[name])} ≠ ${JSON.stringify(b.headers[name])}`);
  }
  if (!a.body.equals(b.body)) out.push(`body ${JSON.stringify(a.body.toString('utf8'))} ≠ ${JSON.stringify(b.body.toString('utf8'))}`);
  return out.join('\n');
}

export function describeResponse(r: RawResponse): string {
  return `${r.status} [${r.headerNames.join(', ')}] ${r.body.toString('utf8')}`;
}
