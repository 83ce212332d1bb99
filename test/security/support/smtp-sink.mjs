// A real SMTP server (STARTTLS with the test CA's certificate, AUTH) in a worker thread of its
// own, so that receiving mail costs the app's event loop nothing a remote server would not.
import { parentPort, workerData } from 'node:worker_threads';
import { SMTPServer } from 'smtp-server';

const { key, cert, user, pass, tls } = workerData;
let received = 0;
const server = new SMTPServer({
  ...(tls ? { key, cert } : { disabledCommands: ['STARTTLS'] }),
  logger: false,
  closeTimeout: 50,
  onAuth(auth, _session, callback) {
    if (auth.username === user && auth.password === pass) return callback(null, { user });
    return callback(Object.assign(new Error('5.7.8 Username and Password not accepted'), { responseCode: 535 }));
  },
  onData(stream, _session, callback) {
    stream.on('end', () => {
      received++;
      callback();
    });
    stream.resume();
  },
});
server.on('error', () => {});
server.listen(0, '127.0.0.1', () => parentPort.postMessage({ type: 'listening', port: server.server.address().port }));
parentPort.on('message', (message) => {
  if (message.type === 'count') parentPort.postMessage({ type: 'count', received });
  if (message.type === 'close') server.close(() => parentPort.postMessage({ type: 'closed' }));
});
