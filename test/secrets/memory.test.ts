import { describe, expect, it } from 'vitest';
import {
  createMemorySecretStore,
  InvalidSecretNameError,
  isValidSecretName,
} from '../../src/secrets/index.js';

describe('memory secret store (the fake)', () => {
  it('behaves like the real adapters: round trip, case-insensitive names, sorted list, idempotent delete', async () => {
    const store = createMemorySecretStore({ 'smtp-password': 'initial' });
    expect(store.kind).toBe('memory');
    expect(await store.get('SMTP-PASSWORD')).toBe('initial');
    await store.set('b', '2');
    await store.set('A', '1');
    expect(await store.list()).toEqual(['A', 'b', 'smtp-password']);
    await store.delete('a');
    await store.delete('a');
    expect(await store.get('A')).toBeUndefined();
    expect(await store.list()).toEqual(['b', 'smtp-password']);
  });

  it('rejects invalid names, initial ones included', async () => {
    expect(() => createMemorySecretStore({ 'bad name': 'x' })).toThrow(InvalidSecretNameError);
    await expect(createMemorySecretStore().set('bad_name', 'x')).rejects.toBeInstanceOf(
      InvalidSecretNameError,
    );
  });
});

describe('isValidSecretName (Azure Key Vault rule)', () => {
  it('accepts 1 to 127 letters, digits and dashes, nothing else', () => {
    expect(isValidSecretName('a')).toBe(true);
    expect(isValidSecretName('Smtp-Password-2')).toBe(true);
    expect(isValidSecretName('x'.repeat(127))).toBe(true);
    expect(isValidSecretName('x'.repeat(128))).toBe(false);
    expect(isValidSecretName('')).toBe(false);
    expect(isValidSecretName('a_b')).toBe(false);
    expect(isValidSecretName('a\nb')).toBe(false);
    expect(isValidSecretName('ab\n')).toBe(false);
  });
});
