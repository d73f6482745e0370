import { LeakDetector, MIN_SECRET_LENGTH, type SecretEntry } from './leak.js';
import type { SecretSource } from './source.js';

/** What leaves through a guarded place: the text to send, and what was taken out of it. */
export interface Guarded { text: string; findings: Array<{ secret?: string; pattern?: string; encoding?: string }> }

/** Guards one kind of outbound text. Given to the agent as a function, so it never imports the vault. */
export type OutboundGuard = (text: string) => Promise<Guarded>;

/**
 * A detector over the vault's secrets plus `extra` (the hub's own, e.g. the LLM API key), rebuilt
 * only when the vault changes. The vault's version is read at most once per `checkEveryMs`, so the
 * hot paths (every string sent to the LLM, every audit field) cost no database round trip; a secret
 * added while the hub runs is guarded within that time. Secrets too short to guard without false
 * positives are left out.
 */
export function vaultDetector(source: SecretSource | undefined, extra: SecretEntry[], checkEveryMs = 1000): () => Promise<LeakDetector> {
  let cached: { version: number; detector: LeakDetector; checkedAt: number } | undefined;
  let pending: Promise<LeakDetector> | undefined;
  const refresh = async (): Promise<LeakDetector> => {
    const version = source ? await source.version() : 0;
    if (cached?.version !== version) {
      const entries = [...extra, ...(source ? await source.entries() : [])].filter((s) => s.value.length >= MIN_SECRET_LENGTH);
      cached = { version, detector: new LeakDetector(entries), checkedAt: Date.now() };
    } else {
      cached.checkedAt = Date.now();
    }
    return cached.detector;
  };
  return async () => {
    if (cached && Date.now() - cached.checkedAt < checkEveryMs) return cached.detector;
    // One refresh at a time: concurrent callers share it instead of each querying the vault.
    pending ??= refresh().finally(() => { pending = undefined; });
    return pending;
  };
}

/**
 * A guard over a detector (usually `vaultDetector`): redacts every secret the detector knows, in any
 * encoding, and well-known credential formats. One detector serves every guard of a process (chat
 * replies, routine messages, LLM requests, audit fields, log lines), so its tables are built once.
 */
export function guardWith(detector: () => Promise<LeakDetector>): OutboundGuard {
  return async (text) => {
    const { redacted, findings } = (await detector()).redact(text);
    return {
      text: redacted,
      findings: findings.map((f) => ({ ...(f.secret ? { secret: f.secret } : {}), ...(f.pattern ? { pattern: f.pattern } : {}), ...(f.encoding ? { encoding: f.encoding } : {}) })),
    };
  };
}
