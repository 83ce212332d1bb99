import type { PasswordReason } from '../types/api';

/** A refused or failed request, with the server's stable code (DESIGN §2 "Errors"). */
export class ApiError extends Error {
  override readonly name = 'ApiError';

  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** field → message, for validation errors */
    readonly fields: Readonly<Record<string, string>> = {},
    /** why a password was refused (`weak_password`) */
    readonly reasons: readonly PasswordReason[] = [],
    /** from `Retry-After` on 429 and 503 */
    readonly retryAfterSeconds: number | undefined = undefined,
    /** the whole JSON body, for refusals that carry more than the common fields (the email test's `stages`) */
    readonly body: Readonly<Record<string, unknown>> = {},
  ) {
    super(message);
  }
}

/** Status 0: the request never got an answer. */
export const NETWORK_ERROR = 'network_error';

type ErrorListener = (error: ApiError) => void;
const listeners = new Set<ErrorListener>();

/** Hears every ApiError (the app uses it for 401 `unauthenticated` and 403 `password_change_required`). */
export function onApiError(listener: ErrorListener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** Calls the JSON API on our own origin. Resolves with the parsed body (undefined for 204); rejects with ApiError. */
export async function apiRequest<T>(method: Method, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  const init: RequestInit = { method, headers, credentials: 'same-origin', cache: 'no-store' };
  // Bodiless requests carry no content type: the server answers 415/400 to a JSON type without a body.
  if (body !== undefined) {
    headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }

  let response: Response;
  try {
    response = await fetch(path, init);
  } catch {
    throw report(new ApiError(0, NETWORK_ERROR, 'The server could not be reached. Check your connection and try again.'));
  }
  if (response.status === 204) return undefined as T;

  const text = await response.text();
  let data: unknown;
  try {
    data = text === '' ? undefined : JSON.parse(text);
  } catch {
    data = undefined;
  }
  if (response.ok) return data as T;
  throw report(toApiError(response, data));
}

export const api = {
  get: <T>(path: string): Promise<T> => apiRequest<T>('GET', path),
  post: <T>(path: string, body?: unknown): Promise<T> => apiRequest<T>('POST', path, body),
  put: <T>(path: string, body: unknown): Promise<T> => apiRequest<T>('PUT', path, body),
  patch: <T>(path: string, body: unknown): Promise<T> => apiRequest<T>('PATCH', path, body),
  delete: <T>(path: string): Promise<T> => apiRequest<T>('DELETE', path),
};

function toApiError(response: Response, data: unknown): ApiError {
  const retryAfterSeconds = parseRetryAfter(response.headers.get('retry-after'));
  const body = isRecord(data) ? data : {};
  const code = typeof body.error === 'string' ? body.error : `http_${response.status}`;
  const message = typeof body.message === 'string' ? body.message : fallbackMessage(response.status);
  const fields: Record<string, string> = {};
  if (isRecord(body.fields)) {
    for (const [key, value] of Object.entries(body.fields)) if (typeof value === 'string') fields[key] = value;
  }
  const reasons: PasswordReason[] = Array.isArray(body.reasons)
    ? body.reasons.filter(isRecord).flatMap((r) => (typeof r.message === 'string' ? [{ code: String(r.code ?? ''), message: r.message }] : []))
    : [];
  return new ApiError(response.status, code, message, fields, reasons, retryAfterSeconds, body);
}

function parseRetryAfter(value: string | null): number | undefined {
  if (value === null) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(1, Math.ceil(seconds));
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(1, Math.ceil((at - Date.now()) / 1000));
}

function fallbackMessage(status: number): string {
  if (status === 429) return 'Too many attempts. Wait a moment and try again.';
  if (status >= 500) return 'Something went wrong on the server. Try again in a moment.';
  return 'The request could not be completed.';
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function report(error: ApiError): ApiError {
  for (const listener of listeners) listener(error);
  return error;
}

/** A sentence for a person: the server's message, or how long to wait when throttled. */
export function describeError(error: unknown): string {
  if (!(error instanceof ApiError)) return 'Something went wrong. Try again.';
  if (error.status === 429 || error.status === 503) {
    const wait = error.retryAfterSeconds;
    const prefix = error.status === 429 ? 'Too many attempts.' : 'The server is busy.';
    return wait === undefined ? `${prefix} Wait a moment and try again.` : `${prefix} Wait ${wait} ${wait === 1 ? 'second' : 'seconds'} and try again.`;
  }
  return error.message;
}
