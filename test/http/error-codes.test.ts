import { describe, expect, it } from 'vitest';
import { COMMON_ERROR_CODES } from '../../src/errors.js';
import { ACCOUNT_ERROR_CODES } from '../../src/accounts/errors.js';
import { RECOVERY_ERROR_CODES } from '../../src/recovery/errors.js';
import { MAIL_ERROR_CODES } from '../../src/mail/errors.js';
import { HTTP_ERROR_CODES, STATUS_OF_CODE } from '../../src/http/errors.js';

describe('the table from error code to HTTP status', () => {
  const declared = [...COMMON_ERROR_CODES, ...HTTP_ERROR_CODES, ...ACCOUNT_ERROR_CODES, ...RECOVERY_ERROR_CODES, ...MAIL_ERROR_CODES];

  it('gives every code a feature declares a 4xx or 503 status', () => {
    for (const code of declared) {
      const status = STATUS_OF_CODE[code];
      expect(status, code).toBeDefined();
      expect(status! >= 400 && (status! < 500 || status === 503), `${code} → ${status}`).toBe(true);
    }
  });

  it('holds no code that no feature declares, and no code twice', () => {
    expect(new Set(declared).size).toBe(declared.length);
    expect(Object.keys(STATUS_OF_CODE).sort()).toEqual([...declared].sort());
  });
});
