import { describe, expect, it } from 'vitest';
import { parseNewUser } from '../../src/accounts/new-user.js';

const PASSWORD = 'a long operator passphrase 2026';
const FIELDS_INVALID = 'Some fields are not valid.';
const EMAIL_MESSAGE = 'Enter one email address, like name@example.com.';
const USERNAME_MESSAGE = 'Use 1 to 64 letters, digits, dots, dashes or underscores.';

// The rules of POST /api/users, answer for answer, so the route and `gatehouse users create` share them.
describe('parseNewUser', () => {
  it('keeps the email as typed but trimmed, trims the name, and passes the password through', () => {
    expect(parseNewUser({ email: ' Ann@Example.com ', name: ' Ann ', role: 'user', password: PASSWORD })).toEqual({
      ok: true,
      user: { email: 'Ann@Example.com', username: null, name: 'Ann', role: 'user', password: PASSWORD },
    });
  });

  it('accepts a username alone with a password, and both identifiers together', () => {
    expect(parseNewUser({ username: 'boss', name: 'Boss', role: 'system-admin', password: PASSWORD })).toEqual({
      ok: true,
      user: { email: null, username: 'boss', name: 'Boss', role: 'system-admin', password: PASSWORD },
    });
    expect(parseNewUser({ email: 'lou@example.com', username: ' lou ', name: 'Lou', role: 'user', password: PASSWORD })).toMatchObject({
      ok: true,
      user: { email: 'lou@example.com', username: 'lou' },
    });
  });

  it('accepts an email without a password: the user is sent a set-password link', () => {
    expect(parseNewUser({ email: 'new@example.com', name: 'New', role: 'user' })).toEqual({
      ok: true,
      user: { email: 'new@example.com', username: null, name: 'New', role: 'user', password: null },
    });
  });

  it.each([undefined, null, '', '   '])('reads a blank email, username or password (%j) as not given', (value) => {
    expect(parseNewUser({ email: 'x@example.com', username: value, name: 'X', role: 'user', password: value })).toMatchObject({
      ok: true,
      user: { email: 'x@example.com', username: null, password: null },
    });
    expect(parseNewUser({ email: value, username: 'x', name: 'X', role: 'user', password: PASSWORD })).toMatchObject({ ok: true, user: { email: null } });
  });

  it('refuses a user with neither a password nor an email, naming the password', () => {
    const expected = { ok: false, message: 'Give a password, or an email to send a set-password link to.', fields: { password: 'Required when there is no email.' } };
    expect(parseNewUser({ name: 'A', role: 'user' })).toEqual(expected);
    expect(parseNewUser({ username: 'a', name: 'A', role: 'user', password: '  ' })).toEqual(expected);
  });

  it('refuses a user with neither an email nor a username, naming the email', () => {
    expect(parseNewUser({ name: 'A', role: 'user', password: PASSWORD })).toEqual({
      ok: false,
      message: 'Give an email, a username or both.',
      fields: { email: 'Give an email or a username.' },
    });
  });

  it.each([
    [{ email: 'a@b.com, c@d.com', name: 'A', role: 'user' }, { email: EMAIL_MESSAGE }],
    [{ email: 'Bob <bob@example.com>', name: 'A', role: 'user' }, { email: EMAIL_MESSAGE }],
    [{ email: 'not-an-address', name: 'A', role: 'user', password: PASSWORD }, { email: EMAIL_MESSAGE }],
    [{ username: 'has space', name: 'A', role: 'user' }, { username: USERNAME_MESSAGE }],
    [{ username: 'a@b', name: 'A', role: 'user', password: PASSWORD }, { username: USERNAME_MESSAGE }],
    [{ username: 'ok', name: '   ', role: 'user' }, { name: 'Required.' }],
    [{ username: 'ok', name: 'A', role: 'owner' }, { role: 'Use system-admin or user.' }],
    [{ username: 'ok', name: 'N'.repeat(201), role: 'user', password: PASSWORD }, { name: 'Use at most 200 characters.' }],
    [{ username: 'ok', name: 'A', role: 'user', password: 'p'.repeat(1025) }, { password: 'Use at most 1024 characters.' }],
  ])('gives a field error for %j', (input, fields) => {
    expect(parseNewUser(input)).toEqual({ ok: false, message: FIELDS_INVALID, fields });
  });

  it('names every bad field at once, before judging whether a password or an email is missing', () => {
    expect(parseNewUser({ email: 'nope', username: 'has space', name: ' ', role: 'owner' })).toEqual({
      ok: false,
      message: FIELDS_INVALID,
      fields: { email: EMAIL_MESSAGE, username: USERNAME_MESSAGE, name: 'Required.', role: 'Use system-admin or user.' },
    });
  });

  it('keeps a name of exactly 200 characters and a password of exactly 1024', () => {
    expect(parseNewUser({ username: 'ok', name: 'N'.repeat(200), role: 'user', password: 'p'.repeat(1024) })).toMatchObject({ ok: true });
  });
});
