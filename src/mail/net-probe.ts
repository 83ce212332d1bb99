import net from 'node:net';
import { fail, Failure, oneLine, seconds } from './advice.js';

// Reaching a server for the staged check, whatever it speaks: the first of its addresses that answers.

export async function connectFirst(addresses: string[], port: number, timeoutMs: number, where: string): Promise<net.Socket> {
  let first: unknown;
  for (const address of addresses) {
    try {
      return await connectTcp(address, port, timeoutMs, where);
    } catch (err) {
      first ??= err;
    }
  }
  if (first instanceof Failure && addresses.length > 1) {
    throw new Failure(first.error, `${first.message} (tried ${addresses.join(', ')})`, first.hint);
  }
  throw first;
}

export function connectTcp(address: string, port: number, timeoutMs: number, where: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: address, port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(fail('connect-timeout', `No answer from ${where} within ${seconds(timeoutMs)}: the connection timed out.`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      // Until a reader attaches, a late error must not crash the process.
      socket.on('error', () => {});
      resolve(socket);
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      socket.destroy();
      if (err.code === 'ECONNREFUSED') {
        reject(fail('connect-refused', `Connection refused by ${where}: nothing is listening on that port.`));
      } else if (err.code === 'EHOSTUNREACH' || err.code === 'ENETUNREACH') {
        reject(fail('host-unreachable', `${where} cannot be reached from this machine (${err.code}).`));
      } else {
        reject(fail('connect-error', `Connecting to ${where} failed (${err.code ?? 'error'}): ${oneLine(err.message)}`));
      }
    });
  });
}
