// Does the answer's timing tell a known address from an unknown one? Sequential requests (one
// at a time over one keep-alive connection), known and unknown interleaved in random order, so
// both sides see the same machine; then the difference of their medians and 10th percentiles.
import { keepAliveAgent, ms2, percentile, request } from './http-client.js';

/** Fisher–Yates, in place. */
function shuffle(items) {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
  return items;
}

function stats(values) {
  return {
    n: values.length,
    medianMs: ms2(percentile(values, 50)),
    p10Ms: ms2(percentile(values, 10)),
    p90Ms: ms2(percentile(values, 90)),
  };
}

/**
 * @param {{ url: string, path: string, known: string[], unknown: string[], headers?: Record<string, string>,
 *           perSide: number, warmup: number, expected: number, body?: (email: string) => object }} o
 * known / unknown: addresses, used in rotation (both lists the same length keeps both sides alike)
 */
export async function knownVsUnknown(o) {
  const agent = keepAliveAgent(1);
  const body = o.body ?? ((email) => ({ email }));
  const next = { known: 0, unknown: 0 };
  const send = (side) => {
    const list = o[side];
    const email = list[next[side]++ % list.length];
    return request({ agent, url: o.url, path: o.path, body: body(email), headers: o.headers });
  };
  try {
    for (let i = 0; i < o.warmup; i++) await send(i % 2 === 0 ? 'known' : 'unknown');
    const order = shuffle([...Array(o.perSide).fill('known'), ...Array(o.perSide).fill('unknown')]);
    const times = { known: [], unknown: [] };
    const unexpected = {};
    for (const side of order) {
      const r = await send(side);
      if (r.status === o.expected) times[side].push(r.ms);
      else unexpected[`${side} ${r.status}`] = (unexpected[`${side} ${r.status}`] ?? 0) + 1;
    }
    const known = stats(times.known);
    const unknown = stats(times.unknown);
    return {
      known,
      unknown,
      medianDiffMs: ms2(known.medianMs - unknown.medianMs),
      p10DiffMs: ms2(known.p10Ms - unknown.p10Ms),
      unexpected,
    };
  } finally {
    agent.destroy();
  }
}

/** A short note for the table: both medians, both p10s and the differences. */
export function timingNote(t) {
  const sign = (n) => (n >= 0 ? `+${n}` : `${n}`);
  const bad = Object.entries(t.unexpected).map(([k, n]) => `${n}× ${k}`);
  return (
    `known − unknown: median ${sign(t.medianDiffMs)} ms, p10 ${sign(t.p10DiffMs)} ms ` +
    `(known ${t.known.medianMs}/${t.known.p10Ms} ms, unknown ${t.unknown.medianMs}/${t.unknown.p10Ms} ms, median/p10, ${t.known.n}+${t.unknown.n} requests one at a time)` +
    (bad.length > 0 ? ` | NOT COUNTED: ${bad.join(', ')}` : '')
  );
}
