import type { DiagnoseErrorCode } from './transport-check.js';

/*
 * What the staged check knows about mail servers and their providers, as data: for each
 * situation a probe can meet, the error code it reports and the plain advice it gives. A probe
 * writes the message (what happened, quoting an SMTP server where that is safe); the hint comes
 * from here. `{name}` in a hint is filled from the probe's facts.
 */

export interface Advice {
  error: DiagnoseErrorCode;
  hint: string;
}

const PORT_ADVICE = 'Use port 587 with SSL enabled (STARTTLS) or port 465 with SSL enabled (implicit TLS).';
const OR_CORRECT_THE_NAME = 'or correct the name on the Settings page';
const RENEW_CERTIFICATE = "The mail server's certificate must be renewed by its admin (or this machine's clock is wrong).";
const CACHED = 'A secret added just now is seen by a running server within SECRETS_CACHE_SECONDS (30 s by default).';

/** Hints by the error code they report, then by situation. */
const HINTS = {
  // the saved settings
  not_configured: {
    'settings-not-saved': 'Open Settings, fill in the "Forgot password" email form (host, port, secret names, SSL) and save it.',
    'settings-invalid': 'Open Settings, correct the email form and save it again.',
  },
  // the sender's secrets
  secret_not_found: {
    'secret-outside-pattern': 'Store the sender address and its password under names that match MAIL_SECRET_NAME_PATTERN ({pattern}), for example "smtp-sender" and "smtp-password", and save the settings with those names (or change MAIL_SECRET_NAME_PATTERN).',
    'secret-store-unreadable': 'Check the secret store configuration (SECRETS_PROVIDER) and that Gatehouse may read it, then try again.',
    'secret-missing': `Add the secret "{name}" to the secret store, ${OR_CORRECT_THE_NAME}.`,
    'secret-missing:local': `Add it with "gatehouse secrets set {name}" (the value is read from stdin), ${OR_CORRECT_THE_NAME}. ${CACHED}`,
    'secret-missing:env': `Set the environment variable {envVariable} for the Gatehouse process and restart it, ${OR_CORRECT_THE_NAME}.`,
    'secret-missing:azure-keyvault': `Create a secret named "{name}" in the key vault (names are case-insensitive) and let Gatehouse's identity read secrets, ${OR_CORRECT_THE_NAME}. ${CACHED}`,
    'sender-not-an-address': 'The email secret holds the sender address (e.g. alerts@example.com) and the password secret holds its password: check that "{emailSecretName}" holds the address.',
    'not-a-pem-certificate':
      'Key Vault hands a certificate out as the secret of the same name, in the certificate\'s content type: create or import the certificate with content type PEM (application/x-pem-file). In another store, keep the certificate and its private key together, in PEM, under "{name}".',
  },
  // resolving the host
  dns_failed: {
    'host-not-found': "Check the spelling of the host name (for example smtp.gmail.com or smtp.office365.com), without a scheme or port, and that this machine's DNS can resolve it.",
    'dns-failed': "The DNS server did not answer in time or failed. Check this machine's DNS configuration and try again.",
    'dns-failed-while-sending': "Check the host name and this machine's DNS.",
  },
  // reaching a mail server
  connect_failed: {
    'connect-timeout': 'A firewall may drop outgoing SMTP (many cloud providers block port 25 and some block 465/587), or the host or port is wrong.',
    'connect-refused': 'Check the host and the port (587 for STARTTLS, 465 for implicit TLS, 25 for a relay) and that the mail server is running.',
    'host-unreachable': "Check the host and this machine's network and firewall rules.",
    'connect-error': 'Check the host, the port and the network between this machine and the mail server.',
    'not-smtp': `Something answers on this port, but it is not a mail server. Check the host and the port. ${PORT_ADVICE}`,
    'no-greeting': `Something accepts connections on this port but does not speak SMTP (or is overloaded). Check the port: ${PORT_ADVICE} A firewall or proxy may be intercepting it.`,
    'neither-tls-nor-smtp': `Something accepts connections on this port but does not speak SMTP. Check the host and port. ${PORT_ADVICE}`,
    'greeting-busy': 'The server is busy or limiting connections; try again in a few minutes.',
    'greeting-refused': "The server turns this machine away (its IP address may be blocked or not allowed to send). Ask the mail server's admin.",
    'greeting-refused-over-tls': "The server turns this machine away; ask the mail server's admin.",
    'no-greeting-over-tls': 'The port speaks TLS but perhaps not SMTP: check the host and port.',
    'ehlo-refused-over-tls': "Check the mail server's configuration.",
    'session-stalled': 'The server or a firewall in between stalls the session; try again, and check the port.',
    'session-closed': `Check the port and SSL setting. ${PORT_ADVICE}`,
    'stalled-while-sending': 'The server or a firewall in between stalls the session; try again.',
    'failed-while-sending': 'Try again; if it keeps failing, check the port, the SSL setting and the network.',
    'entra-unreachable': "Entra ID ({authorityHost}) could not be reached: check this machine's outgoing HTTPS (port 443), its DNS and any proxy, then try again.",
    'graph-unavailable': 'Microsoft Graph is unavailable or busy for now; the outbox retries deliveries on its own. Try again in a few minutes.',
    'https-failed': "Check this machine's outgoing HTTPS (port 443) and GRAPH_BASE_URL.",
  },
  // reaching Entra ID or Microsoft Graph
  permission_denied: {
    'graph-access-denied':
      'The app may not send as {sender}. Give it Mail.Send for this mailbox: with Exchange RBAC for Applications (the "Application Mail.Send" role scoped to the mailbox; then grant no Mail.Send in Entra ID, which would add every mailbox), or as the Microsoft Graph application permission Mail.Send with admin consent, limited by an application access policy that includes this mailbox. Changes can take an hour to apply.',
  },
  // TLS: what the port speaks against what "SSL enabled" and the TLS mode ask for, certificates, handshakes
  tls_failed: {
    'implicit-tls-with-ssl-off': 'This port expects implicit TLS — turn SSL on and set TLS mode to "Implicit TLS" (or "Automatic" on port 465).',
    'implicit-tls-on-starttls-port': 'This port expects TLS from the first byte — set TLS mode to "Implicit TLS" (or use port 465); for STARTTLS use the server\'s submission port, usually 587.',
    'plain-smtp-on-implicit-port': 'Port {port} speaks plain SMTP, not implicit TLS — set TLS mode to "STARTTLS" (or "Automatic" on port 587).',
    'ehlo-refused-before-starttls': PORT_ADVICE,
    'no-starttls': 'Use a port where this server offers TLS: 587 (STARTTLS) or 465 (implicit TLS). Only for a relay on your own network without TLS: turn SSL off and leave the password secret name empty.',
    'no-starttls-for-password': 'Turn SSL on and use a port where the server offers TLS (587 with STARTTLS, or 465), or, for a relay that needs no password, leave the password secret name empty.',
    'starttls-refused': `Check the mail server's TLS configuration. ${PORT_ADVICE}`,
    'tls-failed-while-sending': PORT_ADVICE,
    'certificate-untrusted': "The server's certificate is self-signed or issued by an unknown CA. If the server uses a private CA, give Gatehouse that CA: start it with NODE_EXTRA_CA_CERTS=/path/to/ca.pem. Certificate verification is never turned off. If the issuer is a firewall or antivirus product, it is intercepting TLS.",
    'certificate-expired': RENEW_CERTIFICATE,
    'certificate-not-yet-valid': RENEW_CERTIFICATE,
    'certificate-name-mismatch': 'Use the host name the certificate was issued for (for example smtp.office365.com rather than an IP address or an alias).',
    'tls-too-old': "Upgrade the mail server's TLS configuration, or send through another relay.",
    'tls-timeout': `The server accepted the connection but did not complete TLS. ${PORT_ADVICE}`,
    'tls-handshake-failed': `Check that the port and the SSL setting match the server. ${PORT_ADVICE}`,
  },
  // signing in
  auth_failed: {
    'entra-wrong-secret':
      'Entra ID refused the client secret (AADSTS7000215). Store the secret\'s Value — not its Secret ID — from the app registration\'s "Certificates & secrets" page in the secret "{clientSecretName}".',
    'entra-secret-expired':
      'The client secret has expired (AADSTS7000222). Add a new one to the app registration ("Certificates & secrets"), store its value in "{clientSecretName}" (a running server picks it up within SECRETS_CACHE_SECONDS), then delete the old one. A certificate or managed identity needs no secret to renew by hand.',
    'entra-app-not-in-tenant':
      'No application with client id {clientId} exists in tenant {tenantId} (AADSTS700016): copy both ids from the app registration\'s Overview page; an app registered in another tenant must be consented to in this one by an admin.',
    'entra-tenant-not-found': 'Tenant {tenantId} was not found (AADSTS90002): copy the Directory (tenant) ID from the app registration\'s Overview page, or use the tenant\'s domain, such as contoso.onmicrosoft.com.',
    'entra-bad-certificate':
      'Entra ID refused the client certificate: upload its public part (.cer or .pem) to the app registration ("Certificates & secrets" → Certificates), and keep that same certificate with its private key, in PEM, in "{certificateName}".',
    'entra-managed-identity-unavailable':
      'No managed identity answered. On Azure App Service, Container Apps or a VM, turn on the system-assigned identity (or attach a user-assigned one and enter its client id); on Kubernetes, set up workload identity (AZURE_FEDERATED_TOKEN_FILE). Elsewhere use a client secret or a certificate.',
    'entra-refused': 'Entra ID refused the token request: check the tenant id, the client id and the app\'s credential on its app registration.',
    'graph-token-refused':
      'Microsoft Graph refused the token: it must be an application (app-only) token from the tenant that owns the mailbox, and the app must hold Mail.Send — through Exchange RBAC for Applications, or as the Microsoft Graph application permission (not a delegated one) with admin consent.',
    'xoauth2-refused':
      'Exchange Online refused the app\'s token. The app needs the Office 365 Exchange Online application permission SMTP.SendAsApp with admin consent; its service principal must be registered in Exchange Online (New-ServicePrincipal) and given the mailbox (Add-MailboxPermission -AccessRights FullAccess); SMTP AUTH must be on for the mailbox. Microsoft Graph needs fewer steps: see docs/MAIL.md.',
    'xoauth2-not-offered': 'This server does not take OAuth2 tokens (XOAUTH2). SMTP with OAuth2 is for Microsoft 365: use smtp.office365.com, port 587, STARTTLS.',
    'no-auth-offered': 'This server takes mail without signing in here (a relay), or only on its submission port. For a relay that needs no password, leave the password secret name empty; to sign in, use port 587 or 465.',
  },
  // what Graph refused besides the sign-in
  rejected: {
    'graph-no-mailbox':
      '{sender} is not an Exchange Online mailbox of this tenant (no such user, an unlicensed or inactive mailbox, or one hosted on-premises): send as a licensed or shared mailbox in Microsoft 365.',
    'graph-bad-request': 'Microsoft Graph refused the message as sent. Check the recipient address; if it keeps failing, the server logs have the request.',
    'graph-throttled': 'Microsoft Graph is throttling this app for now: deliveries wait as long as Graph asks (Retry-After) and go out then. Try the test again in {retryAfter} s.',
    'graph-unexpected': 'Try again; if it keeps failing, check the server logs.',
  },
} as const satisfies Partial<Record<DiagnoseErrorCode, Record<string, string>>>;

type Hints = typeof HINTS;
export type Situation = { [C in keyof Hints]: keyof Hints[C] }[keyof Hints];

/** Every situation with its code and hint: the table the probes and the tests read. */
export const ADVICE = Object.fromEntries(
  Object.entries(HINTS).flatMap(([error, hints]) => Object.entries(hints).map(([situation, hint]) => [situation, { error: error as DiagnoseErrorCode, hint }])),
) as Record<Situation, Advice>;

/** Values for the `{name}` places of a hint. */
export type Facts = Record<string, string | number>;

/** An expected failure of a stage: its code, what happened, and what to do about it. */
export class Failure extends Error {
  constructor(
    readonly error: DiagnoseErrorCode,
    message: string,
    readonly hint: string,
  ) {
    super(message);
  }
}

export function advise(situation: Situation, facts: Facts = {}): Advice {
  const advice: Advice = ADVICE[situation];
  return { error: advice.error, hint: fill(advice.hint, facts) };
}

export function fail(situation: Situation, message: string, facts: Facts = {}): Failure {
  const advice = advise(situation, facts);
  return new Failure(advice.error, message, advice.hint);
}

function fill(template: string, facts: Facts): string {
  return template.replace(/\{(\w+)\}/g, (place, name: string) => (name in facts ? String(facts[name]) : place));
}

// ---------------------------------------------------------------------------------------------
// Handshake errors, by the code Node or OpenSSL gives

export type HandshakeSituation =
  | 'certificate-untrusted'
  | 'certificate-expired'
  | 'certificate-not-yet-valid'
  | 'certificate-name-mismatch'
  | 'tls-too-old'
  | 'tls-timeout'
  | 'tls-handshake-failed';

/** First match wins; a row matches on one of its codes or on its message pattern. */
export const HANDSHAKE_ADVICE: readonly { situation: HandshakeSituation; codes: readonly string[]; message?: RegExp }[] = [
  {
    situation: 'certificate-untrusted',
    codes: [
      'DEPTH_ZERO_SELF_SIGNED_CERT',
      'SELF_SIGNED_CERT_IN_CHAIN',
      'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
      'UNABLE_TO_GET_ISSUER_CERT',
      'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
      'CERT_UNTRUSTED',
      'CERT_SIGNATURE_FAILURE',
      'INVALID_CA',
      'CERT_CHAIN_TOO_LONG',
    ],
  },
  { situation: 'certificate-expired', codes: ['CERT_HAS_EXPIRED'] },
  { situation: 'certificate-not-yet-valid', codes: ['CERT_NOT_YET_VALID'] },
  { situation: 'certificate-name-mismatch', codes: ['ERR_TLS_CERT_ALTNAME_INVALID'] },
  { situation: 'tls-too-old', codes: ['ERR_SSL_UNSUPPORTED_PROTOCOL', 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION'], message: /unsupported protocol|protocol version/i },
  { situation: 'tls-timeout', codes: ['ETIMEDOUT'] },
];

export function handshakeSituation(code: string, message: string): HandshakeSituation {
  const row = HANDSHAKE_ADVICE.find((r) => r.codes.includes(code) || (r.message?.test(message) ?? false));
  return row?.situation ?? 'tls-handshake-failed';
}

// ---------------------------------------------------------------------------------------------
// SMTP replies: refused sign-ins and refused messages

export type Provider = 'google' | 'microsoft';

/** How a provider is recognised: by the configured host, or by what its servers say. */
export const PROVIDERS: readonly { provider: Provider; host: RegExp; reply: RegExp }[] = [
  { provider: 'google', host: /(^|\.)(gmail|google(mail)?)\.com\.?$/i, reply: /google|gmail/i },
  { provider: 'microsoft', host: /office365|outlook|microsoft/i, reply: /5\.7\.(139|57|30|3)\b/ },
];

export function providersOf(host: string, reply: string): Provider[] {
  return PROVIDERS.filter((p) => p.host.test(host) || p.reply.test(reply)).map((p) => p.provider);
}

/**
 * A reply that refuses for want of a (good) sign-in, whichever command it comes on: Microsoft's
 * 5.7.57 comes at MAIL FROM.
 */
const SIGN_IN_REFUSAL = /5\.7\.(57|139|30|3|8|9|14)\b|^53[045]\b|authentication required/i;

/** Advice for a refused sign-in; first match wins; a row with a provider applies to that provider only. */
export const SIGN_IN_ADVICE: readonly { about: string; provider?: Provider; reply: RegExp; hint: string }[] = [
  {
    about: 'Microsoft 365: basic authentication no longer accepted',
    reply: /5\.7\.30\b/,
    hint: 'Microsoft 365 no longer takes SMTP with a password (basic authentication) for this tenant: use SMTP with OAuth2 or Microsoft Graph — choose the transport on the Settings page (docs/MAIL.md, "Moving from SMTP basic auth to Graph").',
  },
  {
    about: 'Microsoft 365: basic authentication off for the tenant',
    reply: /5\.7\.139/,
    hint: 'Microsoft 365 has basic authentication (SMTP AUTH with a password) turned off for this tenant (Security defaults or an authentication policy). An admin must allow SMTP AUTH for this mailbox, or send through another relay.',
  },
  {
    about: 'Microsoft 365: client not authenticated',
    reply: /5\.7\.57/,
    hint: 'The server wants the client to sign in before it takes mail (on Microsoft 365, SMTP AUTH is off for the mailbox or tenant). Set a password secret name, and turn on Authenticated SMTP for the mailbox (Microsoft 365 admin center → Users → the mailbox → Mail → Manage email apps).',
  },
  {
    about: 'Microsoft 365: authentication unsuccessful',
    reply: /5\.7\.3\b/,
    hint: 'Microsoft 365 refused the sign-in: SMTP AUTH is turned off for this mailbox, or the password is wrong. Turn on Authenticated SMTP for the mailbox (Microsoft 365 admin center → Users → the mailbox → Mail → Manage email apps) and check the password secret; with multi-factor sign-in, use an app password.',
  },
  {
    about: 'Gmail: the account password, not an App Password',
    provider: 'google',
    reply: /5\.7\.(8|9)\b|534|535/,
    hint: "Gmail does not take the account's normal password over SMTP: turn on 2-Step Verification for the Google account, create an App Password (myaccount.google.com/apppasswords) and store it in the password secret.",
  },
  {
    about: 'Google: sign-in blocked',
    provider: 'google',
    reply: /5\.7\.14/,
    hint: 'Google blocked this sign-in: sign in to the account in a browser, review the security alert, then use an App Password (with 2-Step Verification) in the password secret.',
  },
  { about: 'temporary refusal', reply: /^4\d\d|\b4\.7\.\d/, hint: 'The server refused the sign-in for now (too many attempts or a temporary problem): try again in a few minutes.' },
  {
    about: 'wrong user name or password',
    reply: /5\.7\.8\b|^535\b/,
    hint: 'The server says the user name or password is wrong. Check the password secret; the user name is the sender address held in the email secret.',
  },
  { about: 'a relay that wants a sign-in', reply: /^530\b|authentication required/i, hint: 'The server wants the client to sign in before it takes mail: set a password secret name on the Settings page.' },
  {
    about: 'Microsoft 365: any other refusal',
    provider: 'microsoft',
    reply: /(?:)/,
    hint: 'Check the password in the secret "{passwordSecretName}" and that the sender address in "{emailSecretName}" is the account\'s user name. On Microsoft 365, Authenticated SMTP must be on for the mailbox.',
  },
  { about: 'any other refusal', reply: /(?:)/, hint: 'Check the password in the secret "{passwordSecretName}" and that the sender address in "{emailSecretName}" is the account\'s user name.' },
];

export interface SecretNames {
  emailSecretName: string | null;
  passwordSecretName: string | null;
}

/** How a hint names where the sender address comes from. */
function senderSource(names: SecretNames): string {
  return names.emailSecretName ?? 'the sender address field';
}

/**
 * Advice for a reply that refuses a sign-in or refuses mail for want of one (by the reply, its
 * password blanked, and the configured host); undefined for other replies. After a failed AUTH
 * (`afterAuth`) every reply is a refused sign-in.
 */
export function signInAdvice(reply: string, host: string, names: SecretNames, o: { afterAuth: boolean }): Advice | undefined {
  if (!o.afterAuth && !SIGN_IN_REFUSAL.test(reply)) return undefined;
  const providers = providersOf(host, reply);
  const row = SIGN_IN_ADVICE.find((r) => (r.provider === undefined || providers.includes(r.provider)) && r.reply.test(reply))!;
  return { error: 'auth_failed', hint: fill(row.hint, { emailSecretName: senderSource(names), passwordSecretName: names.passwordSecretName ?? '' }) };
}

export type Refused = 'sender' | 'recipient' | 'message';

/** What a server refused outside the sign-in; first match wins, on the command, the reply or the client's error. */
export const REFUSAL_ADVICE: readonly { refused: Refused; command?: RegExp; reply?: RegExp; error?: RegExp; hint: string }[] = [
  {
    refused: 'sender',
    command: /^MAIL/i,
    reply: /SendAsDenied|5\.7\.60|5\.2\.252|not (?:allowed|authori[sz]ed|permitted) to send|sender address rejected/i,
    hint: 'The account may not send as this address: the email secret "{emailSecretName}" must hold the mailbox\'s own address (or one it is allowed to send as).',
  },
  {
    refused: 'recipient',
    command: /^RCPT/i,
    error: /recipients? (?:were )?rejected/i,
    hint: 'The address may not exist, or the server does not relay to other domains for this account (e.g. "550 5.7.1 relaying denied"). Try an address in the server\'s own domain, or check its relay rules.',
  },
  { refused: 'message', hint: "A content or policy filter refused it (spam check, size limit, SPF/DMARC for the sender's domain). The mail server's logs say which." },
];

const TEMPORARY = 'This is temporary: try again in a few minutes. ';

/** What a refusal of the envelope or the message was about and what to do; a 4xx reply says to try again first. */
export function refusalAdvice(
  r: { command: string; reply: string; error: string; responseCode: number | undefined },
  names: SecretNames,
): Advice & { refused: Refused } {
  const row = REFUSAL_ADVICE.find((a) => (a.command?.test(r.command) ?? false) || (a.reply?.test(r.reply) ?? false) || (a.error?.test(r.error) ?? false) || a.refused === 'message')!;
  const temporary = r.responseCode !== undefined && r.responseCode >= 400 && r.responseCode < 500 ? TEMPORARY : '';
  return { error: 'rejected', refused: row.refused, hint: temporary + fill(row.hint, { emailSecretName: senderSource(names) }) };
}

// ---------------------------------------------------------------------------------------------
// Wording shared by the stages and probes

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export function oneLine(text: string): string {
  return text.replace(/\s*[\r\n]+\s*/g, ' ').trim();
}

/** One line of server text, cut to `max` characters. */
export function clip(text: string, max = 300): string {
  const line = oneLine(text);
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

export function seconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(1)} s`;
}
