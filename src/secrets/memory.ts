import { assertValidSecretName, sortNames, type SecretStore } from './store.js';

/** The in-memory fake for tests. Same rules as the real adapters: names validated, case-insensitive. */
export function createMemorySecretStore(initial: Record<string, string> = {}): SecretStore {
  // Keyed by lower-cased name; the entry keeps the spelling last written, as Key Vault does.
  const entries = new Map<string, { name: string; value: string }>();
  for (const [name, value] of Object.entries(initial)) {
    assertValidSecretName(name);
    entries.set(name.toLowerCase(), { name, value });
  }

  return {
    kind: 'memory',
    async get(name) {
      assertValidSecretName(name);
      return entries.get(name.toLowerCase())?.value;
    },
    async set(name, value) {
      assertValidSecretName(name);
      entries.set(name.toLowerCase(), { name, value });
    },
    async delete(name) {
      assertValidSecretName(name);
      entries.delete(name.toLowerCase());
    },
    async list() {
      return sortNames([...entries.values()].map((entry) => entry.name));
    },
  };
}
