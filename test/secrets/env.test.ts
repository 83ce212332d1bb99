import { describe, expect, it } from 'vitest';
import {
  createEnvSecretStore,
  envVariableForSecret,
  InvalidSecretNameError,
  SecretStoreReadOnlyError,
} from '../../src/secrets/index.js';

describe('env secret store', () => {
  it('reads secret smtp-password from GATEHOUSE_SECRET_SMTP_PASSWORD', async () => {
    expect(envVariableForSecret('smtp-password')).toBe('GATEHOUSE_SECRET_SMTP_PASSWORD');
    const store = createEnvSecretStore({
      GATEHOUSE_SECRET_SMTP_PASSWORD: 'pw',
      SMTP_PASSWORD: 'not this one',
    });
    expect(await store.get('smtp-password')).toBe('pw');
    expect(await store.get('Smtp-Password')).toBe('pw');
    expect(await store.get('smtp-user')).toBeUndefined();
  });

  it('upper-cases and turns every non-alphanumeric into _', () => {
    expect(envVariableForSecret('tempAdminPassword')).toBe('GATEHOUSE_SECRET_TEMPADMINPASSWORD');
    expect(envVariableForSecret('a-b-9')).toBe('GATEHOUSE_SECRET_A_B_9');
  });

  it('treats an empty variable as unset', async () => {
    const store = createEnvSecretStore({ GATEHOUSE_SECRET_EMPTY: '' });
    expect(await store.get('empty')).toBeUndefined();
    expect(await store.list()).toEqual([]);
  });

  it('sees variables set after it was made (it reads the given object live)', async () => {
    const env: Record<string, string | undefined> = {};
    const store = createEnvSecretStore(env);
    env.GATEHOUSE_SECRET_LATE = 'here';
    expect(await store.get('late')).toBe('here');
  });

  it('lists the variable suffixes as found, sorted', async () => {
    const store = createEnvSecretStore({
      GATEHOUSE_SECRET_SMTP_PASSWORD: 'x',
      GATEHOUSE_SECRET_EMAIL: 'y',
      GATEHOUSE_SECRET_: 'no suffix',
      PATH: '/usr/bin',
    });
    expect(await store.list()).toEqual(['EMAIL', 'SMTP_PASSWORD']);
  });

  it('is read-only', async () => {
    const store = createEnvSecretStore({ GATEHOUSE_SECRET_A: '1' });
    expect(store.kind).toBe('env');
    await expect(store.set('a', '2')).rejects.toBeInstanceOf(SecretStoreReadOnlyError);
    await expect(store.delete('a')).rejects.toBeInstanceOf(SecretStoreReadOnlyError);
    expect(await store.get('a')).toBe('1');
  });

  it('rejects invalid names', async () => {
    const store = createEnvSecretStore({ GATEHOUSE_SECRET_A_B: '1' });
    // a_b would map to the same variable as a-b, but is not a valid secret name.
    await expect(store.get('a_b')).rejects.toBeInstanceOf(InvalidSecretNameError);
    await expect(store.get('')).rejects.toBeInstanceOf(InvalidSecretNameError);
  });
});
