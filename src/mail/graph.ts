/*
 * Microsoft Graph sendMail: POST {GRAPH_BASE_URL}/v1.0/users/{sender}/sendMail with an app-only
 * token. The message goes as MIME (the same bytes SMTP would carry: text part first, then HTML,
 * with Auto-Submitted and our Message-ID, which Graph's JSON form cannot set). Exchange keeps a
 * copy in the sender's Sent Items, as it does for any sendMail.
 */

const GRAPH_TIMEOUT_MS = 20_000;

export type GraphSituation =
  | 'graph-bad-request'
  | 'graph-token-refused'
  | 'graph-access-denied'
  | 'graph-no-mailbox'
  | 'graph-throttled'
  | 'graph-unavailable'
  | 'graph-unexpected';

/** A refused or failed sendMail: Graph's error code and message, what it means, whether to retry and when. */
export class GraphError extends Error {
  constructor(
    message: string,
    readonly situation: GraphSituation,
    readonly status: number,
    readonly graphCode: string | undefined,
    readonly transient: boolean,
    readonly retryAfterSeconds: number | undefined,
  ) {
    super(message);
    this.name = 'GraphError';
  }
}

export function sendMailUrl(baseUrl: string, sender: string): string {
  return `${baseUrl.replace(/\/+$/, '')}/v1.0/users/${encodeURIComponent(sender)}/sendMail`;
}

/** Sends one MIME message as `sender`; resolves on 202, else throws a GraphError (or the network's error). */
export async function graphSendMail(o: { baseUrl: string; sender: string; token: string; mime: Buffer; timeoutMs?: number }): Promise<void> {
  const response = await fetch(sendMailUrl(o.baseUrl, o.sender), {
    method: 'POST',
    headers: { authorization: `Bearer ${o.token}`, 'content-type': 'text/plain' },
    body: o.mime.toString('base64'),
    redirect: 'error',
    signal: AbortSignal.timeout(o.timeoutMs ?? GRAPH_TIMEOUT_MS),
  });
  if (response.status === 202 || response.status === 200) {
    await response.body?.cancel();
    return;
  }
  throw await graphError(response);
}

async function graphError(response: Response): Promise<GraphError> {
  let code: string | undefined;
  let text = '';
  try {
    const body = (await response.json()) as { error?: { code?: unknown; message?: unknown } };
    if (typeof body.error?.code === 'string') code = body.error.code;
    if (typeof body.error?.message === 'string') text = body.error.message;
  } catch {
    // not JSON: the status says enough
  }
  const status = response.status;
  const said = `Graph answered ${status}${code === undefined ? '' : ` ${code}`}${text === '' ? '' : `: ${oneLine(text)}`}`;
  const retryAfter = retryAfterSeconds(response.headers.get('retry-after'));
  if (status === 429) return new GraphError(said, 'graph-throttled', status, code, true, retryAfter ?? 60);
  if (status >= 500) return new GraphError(said, 'graph-unavailable', status, code, true, retryAfter);
  if (status === 401) return new GraphError(said, 'graph-token-refused', status, code, true, undefined);
  if (status === 403) return new GraphError(said, 'graph-access-denied', status, code, false, undefined);
  if (status === 404) return new GraphError(said, 'graph-no-mailbox', status, code, false, undefined);
  if (status === 400) return new GraphError(said, 'graph-bad-request', status, code, false, undefined);
  return new GraphError(said, 'graph-unexpected', status, code, status >= 400 && status < 500 ? false : true, undefined);
}

/** Retry-After as seconds (a delay or an HTTP date); undefined when absent or unreadable. */
export function retryAfterSeconds(header: string | null, nowMs = Date.now()): number | undefined {
  if (header === null || header.trim() === '') return undefined;
  if (/^\d+$/.test(header.trim())) return Math.min(Number(header.trim()), 86_400);
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.min(Math.ceil((at - nowMs) / 1000), 86_400));
}

function oneLine(text: string): string {
  const line = text.replace(/\s*[\r\n]+\s*/g, ' ').trim();
  return line.length > 300 ? `${line.slice(0, 299)}…` : line;
}
