// The shapes of the sign-in and users API: each JSON schema is what Ajv checks and the OpenAPI
// document shows, and the one source of its TypeScript type (the routes' and the web app's).
// Plain data, no HTTP: the domain may take its types from here.
import type { FromSchema } from 'json-schema-to-ts';

/** A non-empty string of at most `maxLength` UTF-16 units. */
const str = (maxLength: number, minLength = 1) => ({ type: 'string', minLength, maxLength }) as const;

export const roleSchema = { type: 'string', enum: ['system-admin', 'user'] } as const;
export type Role = FromSchema<typeof roleSchema>;

/** An account as the API shows it: never a hash, a token or a lock's counters. */
export const userSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    email: { type: ['string', 'null'] },
    username: { type: ['string', 'null'] },
    name: { type: 'string' },
    role: roleSchema,
    disabled: { type: 'boolean' },
    mustChangePassword: { type: 'boolean' },
    hasPassword: { type: 'boolean' },
    /** too many failed sign-ins from untrusted clients: a reset or an admin's unlock lifts it */
    locked: { type: 'boolean' },
    /** ISO-8601 UTC */
    createdAt: { type: 'string' },
    /** ISO-8601 UTC */
    passwordChangedAt: { type: 'string' },
  },
  required: ['id', 'email', 'username', 'name', 'role', 'disabled', 'mustChangePassword', 'hasPassword', 'locked', 'createdAt', 'passwordChangedAt'],
  additionalProperties: false,
} as const;
export type User = FromSchema<typeof userSchema>;

export const userEnvelopeSchema = { type: 'object', properties: { user: userSchema }, required: ['user'], additionalProperties: false } as const;
export type UserEnvelope = FromSchema<typeof userEnvelopeSchema>;

/**
 * A list of users. `total`: how many match the query (every user without one). `nextCursor`: there
 * are more; pass it as `after` for the next page (absent on the last page).
 */
export const userListSchema = {
  type: 'object',
  properties: {
    users: { type: 'array', items: userSchema },
    total: { type: 'integer', minimum: 0, description: 'How many users match the query.' },
    nextCursor: { type: 'string', description: 'There are more: pass it as `after` for the next page.' },
  },
  required: ['users'],
  additionalProperties: false,
} as const;
export type UserList = FromSchema<typeof userListSchema>;

/** What `?status=` narrows the list to. `active`: enabled and not locked. */
export const userStatusSchema = { type: 'string', enum: ['active', 'disabled', 'locked', 'must_change_password', 'no_password'] } as const;
export type UserStatusFilter = FromSchema<typeof userStatusSchema>;

/**
 * GET /api/users. Without any parameter: every user, oldest first (as before paging). With any:
 * a page ordered by name (any case), then id — `limit` (1–200, default 50) users after the cursor
 * `after` (the previous page's `nextCursor`), matching all the filters given.
 */
export const userListQuerySchema = {
  type: 'object',
  properties: {
    /** a piece of the name, email or username, any case */
    q: { type: 'string', maxLength: 200, description: 'A piece of the name, email or username, any case.' },
    role: { ...roleSchema, description: 'Only users with this role.' },
    status: { ...userStatusSchema, description: 'active: enabled and not locked; locked: by failed sign-ins; no_password: has not set one yet.' },
    /** 1 to 200, as digits */
    limit: { type: 'string', pattern: '^(?:[1-9]\\d?|1\\d\\d|200)$', description: 'Users per page, 1 to 200 (default 50).' },
    /** an opaque cursor: a previous answer's `nextCursor` */
    after: { type: 'string', minLength: 1, maxLength: 400, pattern: '^[A-Za-z0-9_-]+$', description: 'The nextCursor of the previous page.' },
  },
  additionalProperties: false,
} as const;
export type UserListQuery = FromSchema<typeof userListQuerySchema>;

export const loginBodySchema = {
  type: 'object',
  properties: { login: str(320), password: str(1024) },
  required: ['login', 'password'],
  additionalProperties: false,
} as const;
/** `login` is an email or a username. */
export type LoginBody = FromSchema<typeof loginBodySchema>;

/** The policy's numbers, so pages can give live feedback before the server refuses. */
export const passwordPolicySchema = {
  type: 'object',
  properties: { minLength: { type: 'integer' }, maxLength: { type: 'integer' } },
  required: ['minLength', 'maxLength'],
  additionalProperties: false,
} as const;
export type PasswordPolicy = FromSchema<typeof passwordPolicySchema>;

export const changePasswordBodySchema = {
  type: 'object',
  properties: { currentPassword: str(1024), newPassword: str(1024) },
  required: ['currentPassword', 'newPassword'],
  additionalProperties: false,
} as const;
export type ChangePasswordBody = FromSchema<typeof changePasswordBodySchema>;

export const createUserBodySchema = {
  type: 'object',
  properties: {
    email: { type: ['string', 'null'], maxLength: 320 },
    username: { type: ['string', 'null'], maxLength: 64 },
    name: str(200),
    role: roleSchema,
    /** null or blank: the user gets an email to set a password */
    password: { type: ['string', 'null'], maxLength: 1024 },
  },
  required: ['name', 'role'],
  additionalProperties: false,
} as const;
export type CreateUserBody = FromSchema<typeof createUserBodySchema>;

export const patchUserBodySchema = {
  type: 'object',
  properties: {
    name: str(200),
    email: { type: ['string', 'null'], maxLength: 320 },
    role: roleSchema,
    disabled: { type: 'boolean' },
  },
  additionalProperties: false,
} as const;
export type PatchUserBody = FromSchema<typeof patchUserBodySchema>;
