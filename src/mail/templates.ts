import type { Config } from '../config.js';
import type { OutgoingMessage } from './transport.js';

// Table-based HTML with inline styles: what Outlook's Word engine and Gmail both render.
// Every value from a user (a display name) is escaped; no header takes user input.

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** The product as the emails name it: BRAND_NAME, and BRAND_LOGO_URL made absolute (a path) or kept (a data: URL). */
export interface EmailBrand {
  name: string;
  /** an absolute https?: URL or a data: image URL; undefined: no logo */
  logoUrl?: string | undefined;
}

const DEFAULT_BRAND: EmailBrand = { name: 'Gatehouse' };

/** The brand of the emails from the configuration: a logo path is made absolute under PUBLIC_URL (the only origin of links in emails). */
export function emailBrand(config: Pick<Config, 'brandName' | 'brandLogoUrl' | 'publicUrl'>): EmailBrand {
  const logo = config.brandLogoUrl;
  if (logo === undefined) return { name: config.brandName };
  return { name: config.brandName, logoUrl: logo.startsWith('/') ? new URL(logo, config.publicUrl).href : logo };
}

interface Layout {
  brand: EmailBrand;
  title: string;
  greetingName: string;
  paragraphs: string[];
  button?: { label: string; href: string };
  after: string[];
}

function html(l: Layout): string {
  const p = (text: string): string =>
    `<tr><td style="padding:0 32px 16px 32px;font-family:Arial,Helvetica,sans-serif;font-size:16px;line-height:24px;color:#1f2328;">${text}</td></tr>`;
  const button = l.button
    ? `<tr><td style="padding:8px 32px 24px 32px;">
<table role="presentation" cellspacing="0" cellpadding="0" border="0"><tr>
<td align="center" bgcolor="#0b5cad" style="border-radius:6px;">
<a href="${escapeHtml(l.button.href)}" target="_blank" rel="noopener noreferrer" style="display:inline-block;padding:12px 28px;font-family:Arial,Helvetica,sans-serif;font-size:16px;font-weight:bold;color:#ffffff;text-decoration:none;border-radius:6px;">${escapeHtml(l.button.label)}</a>
</td></tr></table>
</td></tr>`
    : '';
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${escapeHtml(l.title)}</title></head>
<body style="margin:0;padding:0;background-color:#f3f4f6;">
<table role="presentation" width="100%" cellspacing="0" cellpadding="0" border="0" bgcolor="#f3f4f6"><tr><td align="center" style="padding:24px 12px;">
<table role="presentation" width="560" cellspacing="0" cellpadding="0" border="0" bgcolor="#ffffff" style="max-width:560px;width:100%;border:1px solid #d0d7de;border-radius:8px;">
${brandRow(l.brand)}
<tr><td style="padding:8px 32px 8px 32px;font-family:Arial,Helvetica,sans-serif;font-size:20px;font-weight:bold;color:#1f2328;">${escapeHtml(l.title)}</td></tr>
${p(`Hello ${escapeHtml(l.greetingName)},`)}
${l.paragraphs.map((t) => p(escapeHtml(t))).join('\n')}
${button}
${l.after.map((t) => p(escapeHtml(t))).join('\n')}
<tr><td style="padding:8px 32px 24px 32px;font-family:Arial,Helvetica,sans-serif;font-size:12px;line-height:18px;color:#57606a;">Sent by ${escapeHtml(l.brand.name)}. This is an automated message; replies are not read.</td></tr>
</table></td></tr></table>
</body></html>`;
}

/** The logo (decoration: the name is next to it) and the product's name, above the title. */
function brandRow(brand: EmailBrand): string {
  const logo =
    brand.logoUrl === undefined
      ? ''
      : `<img src="${escapeHtml(brand.logoUrl)}" width="28" height="28" alt="" style="display:inline-block;vertical-align:middle;border:0;margin-right:8px;">`;
  return `<tr><td style="padding:24px 32px 0 32px;font-family:Arial,Helvetica,sans-serif;font-size:16px;line-height:28px;font-weight:bold;color:#0b5cad;">${logo}<span style="vertical-align:middle;">${escapeHtml(brand.name)}</span></td></tr>`;
}

function minutesText(minutes: number): string {
  if (minutes % 1440 === 0) return minutes === 1440 ? '24 hours' : `${minutes / 1440} days`;
  if (minutes % 60 === 0) return minutes === 60 ? '1 hour' : `${minutes / 60} hours`;
  return `${minutes} minutes`;
}

/** The text part's last line: who sent it. */
function signature(brand: EmailBrand): string {
  return `Sent by ${brand.name}. This is an automated message; replies are not read.`;
}

export function resetPasswordEmail(input: { to: string; name: string; link: string; validMinutes: number; brand?: EmailBrand }): OutgoingMessage {
  const brand = input.brand ?? DEFAULT_BRAND;
  // The subject and the title say what the reset page says, "Reset your password"; the button keeps
  // the documented label, "Reset Password" (DESIGN §1: people follow the Invictus guide's words).
  const title = 'Reset your password';
  const expiry = `The link works once and expires in ${minutesText(input.validMinutes)}.`;
  const ignore = 'If you did not ask for this, ignore this email: your password stays as it is.';
  const asked = `Someone asked to reset the password of your ${brand.name} account.`;
  return {
    to: input.to,
    subject: title,
    html: html({
      brand,
      title,
      greetingName: input.name,
      paragraphs: [`${asked} To choose a new password, use the button below.`, expiry],
      button: { label: 'Reset Password', href: input.link },
      after: [ignore],
    }),
    text: [`Hello ${input.name},`, '', `${asked} To choose a new password, open this link:`, '', input.link, '', expiry, ignore, '', signature(brand)].join('\n'),
  };
}

export function setPasswordEmail(input: { to: string; name: string; link: string; validMinutes: number; brand?: EmailBrand }): OutgoingMessage {
  const brand = input.brand ?? DEFAULT_BRAND;
  const title = 'Set your password';
  const expiry = `The link works once and expires in ${minutesText(input.validMinutes)}.`;
  const created = `An account on ${brand.name} was created for you.`;
  return {
    to: input.to,
    subject: 'Your new account: set your password',
    html: html({
      brand,
      title,
      greetingName: input.name,
      paragraphs: [`${created} Choose your password with the button below, then sign in.`, expiry],
      button: { label: title, href: input.link },
      after: ['If you did not expect this, ignore this email.'],
    }),
    text: [`Hello ${input.name},`, '', `${created} Choose your password here, then sign in:`, '', input.link, '', expiry, '', signature(brand)].join('\n'),
  };
}

export function passwordChangedEmail(input: { to: string; name: string; at: Date; brand?: EmailBrand }): OutgoingMessage {
  const brand = input.brand ?? DEFAULT_BRAND;
  const title = 'Your password was changed';
  const when = `The password of your ${brand.name} account was changed on ${input.at.toUTCString()}.`;
  const notYou = 'If this was not you, ask your administrator to reset your password and check your account at once.';
  return {
    to: input.to,
    subject: title,
    html: html({ brand, title, greetingName: input.name, paragraphs: [when, 'If it was you, there is nothing more to do.'], after: [notYou] }),
    text: [`Hello ${input.name},`, '', when, 'If it was you, there is nothing more to do.', '', notYou, '', signature(brand)].join('\n'),
  };
}
