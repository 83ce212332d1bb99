import { isIP } from 'node:net';

/**
 * The key a per-IP limit counts a client under. An IPv6 client is normally given a whole /64
 * (RFC 6177) and can pick any address in it, so keying on the exact address would let it rotate
 * past every limit: IPv6 addresses are keyed by their /64 prefix, e.g. `2001:db8:1:2::/64`.
 * An IPv4-mapped address (`::ffff:192.0.2.1`, what a dual-stack socket reports for an IPv4 peer)
 * is keyed as the plain IPv4 address, so one client is one key whichever socket it came in on.
 * Anything that is not an IP address is returned unchanged.
 */
export function rateLimitKeyOfIp(ip: string): string {
  // A zone id (fe80::1%eth0) names the local interface, not a different client.
  const address = ip.includes('%') ? ip.slice(0, ip.indexOf('%')) : ip;
  const version = isIP(address);
  if (version === 4) return address;
  if (version !== 6) return ip;
  const groups = ipv6Groups(address);
  const mappedIpv4 = groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff;
  if (mappedIpv4) return `${groups[6]! >> 8}.${groups[6]! & 0xff}.${groups[7]! >> 8}.${groups[7]! & 0xff}`;
  return `${formatIpv6([...groups.slice(0, 4), 0, 0, 0, 0])}/64`;
}

/** The eight 16-bit groups of an address isIP() accepted as IPv6 (`::` and a trailing dotted IPv4 expanded). */
function ipv6Groups(address: string): number[] {
  const words = (part: string): number[] => {
    if (part === '') return [];
    return part.split(':').flatMap((piece) => {
      if (!piece.includes('.')) return [parseInt(piece, 16)];
      const [a, b, c, d] = piece.split('.').map(Number) as [number, number, number, number];
      return [(a << 8) | b, (c << 8) | d];
    });
  };
  const gap = address.indexOf('::');
  if (gap === -1) return words(address);
  const head = words(address.slice(0, gap));
  const tail = words(address.slice(gap + 2));
  return [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
}

/** RFC 5952 text: lower-case hex, no leading zeros, the longest run of two or more zero groups (the first on a tie) as `::`. */
function formatIpv6(groups: number[]): string {
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < groups.length; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < groups.length && groups[j] === 0) j++;
    if (j - i > bestLength) [bestStart, bestLength] = [i, j - i];
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart === -1) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}

/**
 * X-Forwarded-For as proxies write it, reduced to addresses: some front ends (Azure Application
 * Gateway, IIS ARR) write `ip:port` or `[ipv6]:port`. Left as they are, such an entry is not an
 * address: a TRUST_PROXY list would not recognise the proxy, and a per-IP limit would count every
 * connection of one client under a key of its own.
 */
export function forwardedForWithoutPorts(header: string): string {
  return header
    .split(',')
    .map((entry) => {
      const item = entry.trim();
      const bracketed = /^\[([^\]]+)\](?::\d{1,5})?$/.exec(item);
      if (bracketed) return bracketed[1]!;
      const ipv4WithPort = /^(\d{1,3}(?:\.\d{1,3}){3}):\d{1,5}$/.exec(item);
      return ipv4WithPort ? ipv4WithPort[1]! : item;
    })
    .join(', ');
}
