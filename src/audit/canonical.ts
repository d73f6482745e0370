import { createHash } from 'node:crypto';

/** The prevHash of the first entry (and the head of an empty log). */
export const GENESIS_HASH = '0'.repeat(64);

/** JSON values as the audit log stores them. */
export type AuditValue = string | number | boolean | null | AuditValue[] | { [key: string]: AuditValue };
export type AuditData = { [key: string]: AuditValue };

/**
 * JSON with object keys sorted at every level and no whitespace, so the same content always
 * hashes the same way, whichever process (or database round trip) produced it.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value)) return 'null';
    return JSON.stringify(value ?? null);
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj).filter((k) => obj[k] !== undefined).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
}

/** What one entry's hash covers besides the previous hash. */
export interface EntryContent {
  seq: number;
  time: Date;
  kind: string;
  actor: string;
  subject: string | null;
  /** The stored canonical JSON text of the data. */
  data: string;
}

/** hash = SHA-256(prevHash || "\n" || canonical JSON of the entry's own content), hex. */
export function entryHash(prevHash: string, e: EntryContent): string {
  const content = canonicalJson({ seq: e.seq, time: e.time.toISOString(), kind: e.kind, actor: e.actor, subject: e.subject, data: e.data });
  return createHash('sha256').update(prevHash).update('\n').update(content).digest('hex');
}
