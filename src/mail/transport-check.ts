import type { EmailSettings } from './settings.js';
import type { MailCredentials } from './sender-secrets.js';

// The port between the staged check (diagnose.ts) and a transport's probe (smtp-probe.ts for smtp
// and smtp-oauth2, graph-probe.ts for Microsoft Graph): types only, so neither imports the other's code.

export type ProbeStageName = 'connect' | 'tls' | 'auth' | 'send';
export type DiagnoseErrorCode =
  | 'not_configured'
  | 'secret_not_found'
  | 'dns_failed'
  | 'connect_failed'
  | 'tls_failed'
  | 'auth_failed'
  | 'permission_denied'
  | 'rejected';

export interface DiagnoseTimeoutsMs {
  connect: number;
  greeting: number;
  socket: number;
}

/** What a transport brings to the check: the settings stage's line, and a probe per run. */
export interface TransportCheck {
  /** its steps after DNS, in order */
  stages: readonly ProbeStageName[];
  describe(settings: EmailSettings): string;
  open(context: ProbeContext): ProbeSession;
}

export interface ProbeContext {
  settings: EmailSettings;
  credentials: MailCredentials;
  /** smtp-oauth2 and graph: the Entra ID token the token step got */
  accessToken?: string;
  /** the Message-ID's domain: PUBLIC_URL's host */
  messageIdDomain: string;
  /** the configured host (graph: GRAPH_BASE_URL's) without brackets or a trailing dot */
  host: string;
  /** every address of the host, in the resolver's order */
  addresses: string[];
  /** graph: GRAPH_BASE_URL */
  graphBaseUrl: string;
  to: string;
  timeouts: DiagnoseTimeoutsMs;
}

/** A step's detail line, or why the step does not apply. */
export type StepOutcome = string | { skipped: string };

/**
 * One run of a transport's probe: a step per stage after DNS, called in order until one throws
 * a Failure (advice.ts). What a step learns for the next one is the session's own.
 */
export type ProbeSession = Partial<Record<ProbeStageName, () => Promise<StepOutcome>>> & { close(): void };

