import type { OutgoingMessage } from './transport.js';

// Table-based HTML with inline styles: what Outlook's Word engine and Gmail both render.
// Every value from a user (a display name) is escaped; no header takes user input.

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

interface Layout {
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
<tr><td style="padding:24px 32px 8px 32px;font-family:Arial,Helvetica,sans-serif;font-size:20px;font-weight:bold;color:#1f2328;">${escapeHtml(l.title)}</td></tr>
${p(`Hello ${escapeHtml(l.greetingName)},`)}
${l.paragraphs.map((t) => p(escapeHtml(t))).join('\n')}
${button}
${l.after.map((t) => p(escapeHtml(t))).join('\n')}
<tr><td style="padding:8px 32px 24px 32px;font-family:Arial,Helvetica,sans-serif;font-size:12px;line-height:18px;color:#57606a;">Sent by Gatehouse. This is an automated message; replies are not read.</td></tr>
</table></td></tr></table>
</body></html>`;
}

function minutesText(minutes: number): string {
  if (minutes % 1440 === 0) return minutes === 1440 ? '24 hours' : `${minutes / 1440} days`;
  if (minutes % 60 === 0) return minutes === 60 ? '1 hour' : `${minutes / 60} hours`;
  return `${minutes} minutes`;
}

export function resetPasswordEmail(input: { to: string; name: string; link: string; validMinutes: number }): OutgoingMessage {
  const title = 'Reset your password';
  const expiry = `The link works once and expires in ${minutesText(input.validMinutes)}.`;
  const ignore = 'If you did not ask for this, ignore this email: your password stays as it is.';
  return {
    to: input.to,
    subject: title,
    html: html({
      title,
      greetingName: input.name,
      paragraphs: ['Someone asked to reset the password of your account. To choose a new password, use the button below.', expiry],
      button: { label: 'Reset Password', href: input.link },
      after: [ignore],
    }),
    text: [
      `Hello ${input.name},`,
      '',
      'Someone asked to reset the password of your account. To choose a new password, open this link:',
      '',
      input.link,
      '',
      expiry,
      ignore,
    ].join('\n'),
  };
}

export function setPasswordEmail(input: { to: string; name: string; link: string; validMinutes: number }): OutgoingMessage {
  const title = 'Set your password';
  const expiry = `The link works once and expires in ${minutesText(input.validMinutes)}.`;
  return {
    to: input.to,
    subject: 'Your new account: set your password',
    html: html({
      title,
      greetingName: input.name,
      paragraphs: ['An account was created for you. Choose your password with the button below, then sign in.', expiry],
      button: { label: 'Reset Password', href: input.link },
      after: ['If you did not expect this, ignore this email.'],
    }),
    text: [`Hello ${input.name},`, '', 'An account was created for you. Choose your password here, then sign in:', '', input.link, '', expiry].join('\n'),
  };
}

export function passwordChangedEmail(input: { to: string; name: string; at: Date }): OutgoingMessage {
  const title = 'Your password was changed';
  const when = `Your password was changed on ${input.at.toUTCString()}.`;
  const notYou = 'If this was not you, ask your administrator to reset your password and check your account at once.';
  return {
    to: input.to,
    subject: title,
    html: html({ title, greetingName: input.name, paragraphs: [when, 'If it was you, there is nothing more to do.'], after: [notYou] }),
    text: [`Hello ${input.name},`, '', when, 'If it was you, there is nothing more to do.', '', notYou].join('\n'),
  };
}
