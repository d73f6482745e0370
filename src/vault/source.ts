import type { SecretEntry } from './leak.js';
import type { SecretPolicy } from './policy.js';

/**
 * What the egress and the leak detectors need of the vault: host-side only. The agent and the
 * sandbox never hold one of these; they hold an `Egress` built from it.
 */
export interface SecretSource {
  /** The value and policy of one secret, or undefined when there is no such secret. */
  get(name: string): Promise<{ value: string; policy: SecretPolicy } | undefined>;
  /** Every secret's name and value, for the leak detector. */
  entries(): Promise<SecretEntry[]>;
  /** Changes whenever a secret is added, removed or re-encrypted, so callers can cache detectors. */
  version(): Promise<number>;
}

/** A SecretSource over values held in memory (tests, and `bulwark leakscan --secret-file`). */
export function memorySecretSource(secrets: Record<string, { value: string; policy: SecretPolicy }>): SecretSource {
  return {
    get: async (name) => (Object.hasOwn(secrets, name) ? secrets[name] : undefined),
    entries: async () => Object.entries(secrets).map(([name, s]) => ({ name, value: s.value })),
    version: async () => 0,
  };
}
