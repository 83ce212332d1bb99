import type net from 'node:net';
import tls from 'node:tls';
import { fail, type Failure, handshakeSituation, oneLine } from './advice.js';

/*
 * TLS for the staged check: the handshake (implicit TLS or after STARTTLS), whether a port
 * answers a handshake at all, and what a failed handshake or a refused certificate means.
 * Nothing here knows SMTP.
 */

export interface TlsTarget {
  /** the address that answered */
  address: string;
  port: number;
  /** the configured host without brackets: the name the certificate must carry */
  host: string;
  servername: string | undefined;
  base: tls.ConnectionOptions;
}

/** The handshake could not start or complete; `code` as Node or OpenSSL gave it. */
export class TlsHandshakeError extends Error {
  constructor(
    message: string,
    readonly code: string,
    readonly certificate?: tls.PeerCertificate,
  ) {
    super(message);
  }
}

/**
 * Upgrades a connected socket to TLS. Verification is done here, by hand, only so that the
 * failure can name the certificate it saw; this connection never carries credentials or mail —
 * nodemailer, which does, verifies with rejectUnauthorized: true.
 */
export function upgradeToTls(plain: net.Socket, target: TlsTarget, timeoutMs: number): Promise<{ socket: tls.TLSSocket; describe: string }> {
  plain.on('error', () => {});
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ ...target.base, socket: plain, host: target.address, servername: target.servername, rejectUnauthorized: false });
    socket.on('error', () => {});
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new TlsHandshakeError('the TLS handshake timed out', 'ETIMEDOUT'));
    }, timeoutMs);
    const onError = (err: NodeJS.ErrnoException): void => {
      clearTimeout(timer);
      socket.destroy();
      reject(new TlsHandshakeError(err.message, err.code ?? 'ERROR'));
    };
    socket.once('error', onError);
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      socket.off('error', onError);
      const certificate = socket.getPeerCertificate();
      if (!socket.authorized) {
        const reason = socket.authorizationError as unknown as string | (Error & { code?: string }) | null;
        const code = typeof reason === 'string' ? reason : (reason?.code ?? reason?.message ?? 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
        socket.destroy();
        reject(new TlsHandshakeError(code, code, certificate));
        return;
      }
      const mismatch = tls.checkServerIdentity(target.host, certificate);
      if (mismatch !== undefined) {
        socket.destroy();
        reject(new TlsHandshakeError(mismatch.message, (mismatch as Error & { code?: string }).code ?? 'ERR_TLS_CERT_ALTNAME_INVALID', certificate));
        return;
      }
      resolve({ socket, describe: `${socket.getProtocol() ?? 'TLS'}; ${describeCertificate(certificate)}` });
    });
  });
}

/** A side connection that only tries a TLS handshake; nothing is ever sent over it. */
export function speaksTls(target: TlsTarget, timeoutMs: number): { result: Promise<boolean>; cancel: () => void } {
  let socket: tls.TLSSocket | undefined;
  const result = new Promise<boolean>((resolve) => {
    // No certificate check: this asks only "is it TLS?", and the connection is closed right away.
    socket = tls.connect({ host: target.address, port: target.port, servername: target.servername, rejectUnauthorized: false });
    socket.on('error', () => {});
    const timer = setTimeout(() => {
      socket?.destroy();
      resolve(false);
    }, timeoutMs);
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      socket?.destroy();
      resolve(true);
    });
    socket.once('error', () => {
      clearTimeout(timer);
      socket?.destroy();
      resolve(false);
    });
  });
  return { result, cancel: () => socket?.destroy() };
}

/** The peer answered a ClientHello with something that is not TLS ("wrong version number" and friends), or hung up. */
export function isNotTls(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  return (
    e.code === 'ERR_SSL_WRONG_VERSION_NUMBER' ||
    e.code === 'ERR_SSL_PACKET_LENGTH_TOO_LONG' ||
    e.code === 'ERR_SSL_HTTP_REQUEST' ||
    e.code === 'ECONNRESET' ||
    e.code === 'EPIPE' ||
    /wrong version number|packet length too long|unknown protocol|record layer failure|before secure TLS connection/i.test(e.message ?? '')
  );
}

/** A failed handshake or a refused certificate, with the certificate it saw. */
export function tlsFailure(err: unknown, target: TlsTarget): Failure {
  const e = err as Partial<TlsHandshakeError>;
  const code = e.code ?? 'ERROR';
  const cert = e.certificate !== undefined && Object.keys(e.certificate).length > 0 ? e.certificate : undefined;
  const seen = cert ? ` It presented ${describeCertificate(cert)}.` : '';
  const situation = handshakeSituation(code, e.message ?? '');
  switch (situation) {
    case 'certificate-untrusted':
      return fail(situation, `The certificate of ${target.host} is not trusted (${code}: ${untrustedReason(code)}).${seen}`);
    case 'certificate-expired':
      return fail(situation, `The certificate of ${target.host} has expired.${seen}`);
    case 'certificate-not-yet-valid':
      return fail(situation, `The certificate of ${target.host} is not valid yet.${seen}`);
    case 'certificate-name-mismatch':
      return fail(situation, `The certificate of ${target.host} is for ${cert?.subjectaltname ?? 'other names'}, not ${target.host}.`);
    case 'tls-too-old':
      return fail(situation, `${target.host} offers only TLS older than 1.2, which Gatehouse refuses.`);
    case 'tls-timeout':
      return fail(situation, `The TLS handshake with ${target.host} timed out.`);
    case 'tls-handshake-failed':
      return fail(situation, `The TLS handshake with ${target.host} failed (${code}): ${oneLine(e.message ?? '')}`);
  }
}

function untrustedReason(code: string): string {
  if (code === 'DEPTH_ZERO_SELF_SIGNED_CERT') return 'self-signed certificate';
  if (code === 'SELF_SIGNED_CERT_IN_CHAIN') return 'self-signed certificate in the chain';
  if (code === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' || code === 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY' || code === 'UNABLE_TO_GET_ISSUER_CERT') return 'issued by an unknown CA';
  return 'not trusted';
}

function describeCertificate(cert: tls.PeerCertificate): string {
  const subject = nameOf(cert.subject) ?? cert.subjectaltname ?? 'an unnamed subject';
  const issuer = nameOf(cert.issuer) ?? 'an unnamed issuer';
  const validTo = cert.valid_to ? new Date(cert.valid_to) : undefined;
  const until = validTo !== undefined && !Number.isNaN(validTo.getTime()) ? `, valid until ${validTo.toISOString().slice(0, 10)}` : '';
  return `certificate for "${subject}" issued by "${issuer}"${until}`;
}

function nameOf(name: tls.Certificate | undefined): string | undefined {
  if (name === undefined || name === null) return undefined;
  const value = name.CN ?? name.O;
  return Array.isArray(value) ? value.join(', ') : value;
}
