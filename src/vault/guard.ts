import { LeakDetector, MIN_SECRET_LENGTH, type SecretEntry } from './leak.js';

/** What leaves through a guarded place: the text to send, and what was taken out of it. */
export interface Guarded { text: string; findings: Array<{ secret?: string; pattern?: string; encoding?: string }> }

/** Guards one kind of outbound text. Given to the agent as a function, so it never imports the vault. */
export type OutboundGuard = (text: string) => Guarded;

/**
 * The guard for chat replies: redacts every secret the hub holds (today the LLM API key; the vault's
 * secrets once it lands) in any encoding the detector knows, and well-known credential formats.
 * Secrets too short to guard without false positives are left out (the detector refuses them).
 */
export function createReplyGuard(secrets: SecretEntry[]): OutboundGuard {
  const detector = new LeakDetector(secrets.filter((s) => s.value.length >= MIN_SECRET_LENGTH));
  return (text) => {
    const { redacted, findings } = detector.redact(text);
    return {
      text: redacted,
      findings: findings.map((f) => ({ ...(f.secret ? { secret: f.secret } : {}), ...(f.pattern ? { pattern: f.pattern } : {}), ...(f.encoding ? { encoding: f.encoding } : {}) })),
    };
  };
}
