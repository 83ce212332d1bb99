import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/clock.js';
import {
  createCachedSecretStore,
  createMemorySecretStore,
  createSecretStore,
  SecretStoreUnavailableError,
  type SecretStore,
} from '../../src/secrets/index.js';

/** A memory store that counts backend reads and can hold them open or fail them. */
function countingStore(initial: Record<string, string> = {}): SecretStore & {
  reads: string[];
  hold(): () => void;
  failNext(): void;
} {
  const inner = createMemorySecretStore(initial);
  const reads: string[] = [];
  let gate: Promise<void> | undefined;
  let fail = false;
  return {
    kind: inner.kind,
    reads,
    hold() {
      let release!: () => void;
      gate = new Promise((resolve) => (release = resolve));
      return () => {
        gate = undefined;
        release();
      };
    },
    failNext() {
      fail = true;
    },
    async get(name) {
      reads.push(name);
      const value = await inner.get(name);
      if (gate) await gate;
      if (fail) {
        fail = false;
        throw new SecretStoreUnavailableError('backend down');
      }
      return value;
    },
    set: (name, value) => inner.set(name, value),
    delete: (name) => inner.delete(name),
    list: () => inner.list(),
  };
}

describe('cached secret store', () => {
  it('serves a read from cache until exactly ttlSeconds, then reads the backend again', async () => {
    const clock = new FakeClock();
    const inner = countingStore({ 'smtp-password': 'v1' });
    const store = createCachedSecretStore(inner, { ttlSeconds: 30, clock });

    expect(await store.get('smtp-password')).toBe('v1');
    // Rotated behind the cache's back, as an operator does in the vault.
    await inner.set('smtp-password', 'v2');
    clock.advanceSeconds(29.999);
    expect(await store.get('smtp-password')).toBe('v1');
    expect(inner.reads).toHaveLength(1);

    clock.advanceSeconds(0.001);
    expect(await store.get('smtp-password')).toBe('v2');
    expect(inner.reads).toHaveLength(2);
  });

  it('caches "not found" for the same ttl', async () => {
    const clock = new FakeClock();
    const inner = countingStore();
    const store = createCachedSecretStore(inner, { ttlSeconds: 10, clock });
    expect(await store.get('missing')).toBeUndefined();
    await inner.set('missing', 'now-here');
    expect(await store.get('missing')).toBeUndefined();
    clock.advanceSeconds(10);
    expect(await store.get('missing')).toBe('now-here');
    expect(inner.reads).toHaveLength(2);
  });

  it('shares the cache across the spellings of one name', async () => {
    const inner = countingStore({ abc: '1' });
    const store = createCachedSecretStore(inner, { ttlSeconds: 10, clock: new FakeClock() });
    await store.get('abc');
    await store.get('ABC');
    expect(inner.reads).toHaveLength(1);
  });

  it('drops the cached value on set and delete through it', async () => {
    const inner = countingStore({ a: 'old' });
    const store = createCachedSecretStore(inner, { ttlSeconds: 300, clock: new FakeClock() });
    expect(await store.get('a')).toBe('old');
    await store.set('A', 'new');
    expect(await store.get('a')).toBe('new');
    await store.delete('a');
    expect(await store.get('a')).toBeUndefined();
    expect(inner.reads).toHaveLength(3);
  });

  it('lets concurrent reads of one name share a single backend request', async () => {
    const inner = countingStore({ a: '1', b: '2' });
    const store = createCachedSecretStore(inner, { ttlSeconds: 30, clock: new FakeClock() });
    const release = inner.hold();
    const reads = [store.get('a'), store.get('a'), store.get('A'), store.get('b')];
    await new Promise((resolve) => setImmediate(resolve));
    release();
    expect(await Promise.all(reads)).toEqual(['1', '1', '1', '2']);
    expect(inner.reads).toEqual(['a', 'b']);
  });

  it('does not cache a value read before a write that finished after it', async () => {
    const inner = countingStore({ a: 'old' });
    const store = createCachedSecretStore(inner, { ttlSeconds: 300, clock: new FakeClock() });
    const release = inner.hold();
    const staleRead = store.get('a');
    await new Promise((resolve) => setImmediate(resolve));
    await store.set('a', 'new');
    release();
    expect(await staleRead).toBe('old');
    expect(await store.get('a')).toBe('new');
  });

  it('does not cache failures', async () => {
    const inner = countingStore({ a: '1' });
    const store = createCachedSecretStore(inner, { ttlSeconds: 30, clock: new FakeClock() });
    inner.failNext();
    await expect(store.get('a')).rejects.toBeInstanceOf(SecretStoreUnavailableError);
    expect(await store.get('a')).toBe('1');
    expect(inner.reads).toHaveLength(2);
  });

  it('reads the backend every time when ttlSeconds is 0', async () => {
    const inner = countingStore({ a: '1' });
    const store = createCachedSecretStore(inner, { ttlSeconds: 0, clock: new FakeClock() });
    await store.get('a');
    await store.get('a');
    expect(inner.reads).toHaveLength(2);
  });

  it('refuses a negative ttl', () => {
    expect(() =>
      createCachedSecretStore(countingStore(), { ttlSeconds: -1, clock: new FakeClock() }),
    ).toThrow(RangeError);
  });
});

describe('createSecretStore', () => {
  it('builds the env adapter behind the cache', async () => {
    const clock = new FakeClock();
    const env: Record<string, string | undefined> = { GATEHOUSE_SECRET_SMTP_PASSWORD: 'one' };
    const store = await createSecretStore({
      provider: 'env',
      dataDir: '/nonexistent',
      cacheSeconds: 5,
      env,
      clock,
    });
    expect(store.kind).toBe('env');
    expect(await store.get('smtp-password')).toBe('one');
    env.GATEHOUSE_SECRET_SMTP_PASSWORD = 'two';
    expect(await store.get('smtp-password')).toBe('one');
    clock.advanceSeconds(5);
    expect(await store.get('smtp-password')).toBe('two');
  });

  it('requires a vault URL for azure-keyvault, before loading anything', async () => {
    await expect(
      createSecretStore({
        provider: 'azure-keyvault',
        dataDir: '/nonexistent',
        cacheSeconds: 30,
        env: {},
        clock: new FakeClock(),
      }),
    ).rejects.toThrow(/AZURE_KEYVAULT_URL/);
  });
});
