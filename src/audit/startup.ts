import { createHash } from 'node:crypto';
import type { Db } from '../db/client.js';
import { canonicalJson } from './canonical.js';
import type { AuditLog } from './log.js';

/** Config keys whose values are secrets: left out of the digest entirely. */
const SECRET_KEYS = new Set(['api_key', 'key', 'token', 'password', 'secret']);

function withoutSecrets(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(withoutSecrets);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).filter(([k]) => !SECRET_KEYS.has(k)).map(([k, x]) => [k, withoutSecrets(x)]));
  return v;
}

/** A digest of the effective configuration without its secret values. */
export function configDigest(config: unknown): string {
  return createHash('sha256').update(canonicalJson(withoutSecrets(config))).digest('hex').slice(0, 32);
}

/**
 * Records the start of a hub process, and `config.changed` when the configuration (or the agent's
 * manifest grant) differs from what the previous start recorded. Digests only: the values stay in
 * the config file.
 */
export async function recordStartup(audit: AuditLog, db: Db, facts: { role: string; config: unknown; grant?: { http: readonly string[]; tools: readonly string[]; secrets?: readonly string[] | undefined } | undefined }): Promise<void> {
  const digest = configDigest(facts.config);
  const grant = facts.grant ? { http: [...facts.grant.http], tools: [...facts.grant.tools], handles: [...(facts.grant.secrets ?? [])] } : null;
  const last = await db.auditEntry.findFirst({ where: { kind: 'hub.started' }, orderBy: { seq: 'desc' } }).catch(() => null);
  let before: { configDigest?: string; grant?: unknown } = {};
  try { before = last ? JSON.parse(last.data) as typeof before : {}; } catch { /* unreadable: treat as first start */ }
  if (last && before.configDigest !== digest) audit.record({ kind: 'config.changed', actor: 'system', data: { from: before.configDigest ?? null, to: digest } });
  if (last && grant && canonicalJson(before.grant ?? null) !== canonicalJson(grant)) audit.record({ kind: 'capability.changed', actor: 'system', subject: 'agent:default', data: { from: (before.grant ?? null) as never, to: grant } });
  audit.record({ kind: 'hub.started', actor: 'system', data: { role: facts.role, pid: process.pid, configDigest: digest, grant } });
}
