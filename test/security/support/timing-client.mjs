// The attacker's stopwatch, in a worker thread of its own: its event loop is not the app's, so a
// duration is the time from handing the request to the socket until the last byte of the answer
// arrived, not until the app's event loop happened to let the client see it.
import http from 'node:http';
import { parentPort, workerData } from 'node:worker_threads';

const { port, path, emails } = workerData;
// One connection, kept alive: no handshake in any measurement.
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

function timed(email) {
  const body = Buffer.from(JSON.stringify({ email }));
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, path, method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': String(body.length) } },
      (res) => {
        res.on('data', () => {});
        res.on('end', () => {
          const ns = process.hrtime.bigint() - started;
          if (res.statusCode !== 202) reject(new Error(`forgot-password answered ${res.statusCode} for ${email}`));
          else resolve(Number(ns));
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    const started = process.hrtime.bigint();
    req.end(body);
  });
}

const durations = new Float64Array(emails.length);
for (let i = 0; i < emails.length; i++) durations[i] = await timed(emails[i]);
agent.destroy();
parentPort.postMessage(durations, [durations.buffer]);
