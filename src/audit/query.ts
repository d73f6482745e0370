import type { Db } from '../db/client.js';
import { toAuditEntry, type AuditEntry } from './log.js';

export interface AuditQuery {
  /** `approval` matches `approval` and `approval.*`. */
  kind?: string | undefined;
  actor?: string | undefined;
  since?: Date | undefined;
  afterSeq?: number | undefined;
  limit?: number | undefined;
  /** The newest `limit` entries (still returned oldest first), instead of the oldest. */
  newest?: boolean | undefined;
}

/** Entries matching the query, oldest first. */
export async function queryAudit(db: Db, q: AuditQuery): Promise<AuditEntry[]> {
  const rows = await db.auditEntry.findMany({
    where: {
      ...(q.kind ? { OR: [{ kind: q.kind }, { kind: { startsWith: `${q.kind}.` } }] } : {}),
      ...(q.actor ? { actor: q.actor } : {}),
      ...(q.since ? { time: { gte: q.since } } : {}),
      ...(q.afterSeq !== undefined ? { seq: { gt: q.afterSeq } } : {}),
    },
    orderBy: { seq: q.newest ? 'desc' : 'asc' },
    take: Math.min(Math.max(q.limit ?? 100, 1), 10_000),
  });
  const entries = rows.map(toAuditEntry);
  return q.newest ? entries.reverse() : entries;
}

/** One line per entry for the terminal. */
export function formatAuditLine(e: AuditEntry): string {
  const data = Object.keys(e.data).length ? ` ${JSON.stringify(e.data)}` : '';
  return `${String(e.seq).padStart(6)}  ${e.time.toISOString()}  ${e.kind.padEnd(20)} ${e.actor}${e.subject ? ` → ${e.subject}` : ''}${data}`;
}
