import { describe, expect, it } from 'vitest';
import { isDatabaseUnreachable } from '../../src/http/errors.js';

// Which errors answer 503 database_unavailable rather than 500 (test/cluster/faults.test.ts
// stops a real PostgreSQL under load and sees the answers).
const withCode = (message: string, code: string): Error => Object.assign(new Error(message), { code });

describe('isDatabaseUnreachable', () => {
  it.each([
    ['a refused connection', withCode('connect ECONNREFUSED 127.0.0.1:5432', 'ECONNREFUSED')],
    ['a reset connection', withCode('read ECONNRESET', 'ECONNRESET')],
    ['PostgreSQL shutting down (57P01)', withCode('terminating connection due to administrator command', '57P01')],
    ['PostgreSQL starting up (57P03)', withCode('the database system is starting up', '57P03')],
    ['a connection exception (08006)', withCode('connection failure', '08006')],
    ['pg: the server closed the connection', new Error('Connection terminated unexpectedly')],
    ['pg: the pool could not connect in time', new Error('timeout exceeded when trying to connect')],
    ['every address refused (AggregateError)', new AggregateError([withCode('connect ECONNREFUSED ::1:5432', 'ECONNREFUSED')], '')],
  ])('%s is', (_name, err) => {
    expect(isDatabaseUnreachable(err)).toBe(true);
  });

  it.each([
    ['a unique violation (23505)', withCode('duplicate key value violates unique constraint', '23505')],
    ['a syntax error (42601)', withCode('syntax error at or near', '42601')],
    ['SQLite busy', withCode('database is locked', 'SQLITE_BUSY')],
    ['a plain bug', new TypeError("Cannot read properties of undefined (reading 'id')")],
    ['not an Error', 'ECONNREFUSED'],
  ])('%s is not', (_name, err) => {
    expect(isDatabaseUnreachable(err)).toBe(false);
  });
});
