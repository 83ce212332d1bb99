// A client in a process of its own that sends waves of parallel POSTs to one route: on each
// { wave: cookie } message it sends `concurrency` requests at once with that cookie and answers
// with the count of each status code once all are answered. "stop" ends it.
import http from 'node:http';

const [url, body, concurrencyArg] = process.argv.slice(2);
const concurrency = Number(concurrencyArg);
const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });

function once(cookie, statuses) {
  return new Promise((resolve) => {
    const req = http.request(url, { method: 'POST', agent, headers: { cookie, 'content-type': 'application/json' } }, (res) => {
      res.resume();
      res.on('end', () => {
        statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1;
        resolve();
      });
    });
    req.on('error', () => {
      statuses.error = (statuses.error ?? 0) + 1;
      resolve();
    });
    req.end(body);
  });
}

process.on('message', async (m) => {
  if (m === 'stop') process.exit(0);
  if (typeof m === 'object' && m !== null && 'wave' in m) {
    const statuses = {};
    await Promise.all(Array.from({ length: concurrency }, () => once(m.wave, statuses)));
    process.send({ statuses });
  }
});
process.send('started');
