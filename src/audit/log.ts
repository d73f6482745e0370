import type { Db } from '../db/client.js';
import type { Logger } from '../logger.js';
import { canonicalJson, entryHash, type AuditData } from './canonical.js';
import { writeCheckpoint } from './checkpoints.js';
import { redactKnownSecrets, safeAuditData, safeLabel, type SecretFinder } from './safe-data.js';

/** One thing that happened. `data` holds ids, sizes, hosts, methods, statuses: never content. */
export interface AuditEvent {
  /** Dotted, e.g. `web.login`, `message.accepted`, `approval.decided`, `egress.request`. */
  kind: string;
  /** Who did it: `owner`, `agent:default`, `telegram:12345`, `system`. */
  actor: string;
  /** What it was done to: a conversation id, a request id, a host. */
  subject?: string;
  data?: Record<string, unknown>;
}

/**
 * How other modules report events without knowing about the database: the hub hands them
 * `audit.sink`. Never throws and never waits; a failed write is logged and counted by the log.
 */
export type AuditSink = (event: AuditEvent) => void;

/** A sink that drops everything, for code running without a hub (tests, one-off CLI runs). */
export const NO_AUDIT: AuditSink = () => undefined;

/**
 * For actions acknowledged to someone right after (a 202 for a message, a login, a decision): the
 * caller awaits the entry's commit before it answers, so a hub killed after answering cannot have
 * lost the record. Resolves with the stored entry, or with undefined when the write failed (the
 * log has already logged and counted it); never rejects, so the action itself is never undone by
 * a failed audit write. Concurrent callers share one batch, so parallel awaits stay cheap.
 */
export type DurableAuditSink = (event: AuditEvent) => Promise<AuditEntry | undefined>;

/** The durable sink that drops everything. */
export const NO_DURABLE_AUDIT: DurableAuditSink = async () => undefined;

export interface AuditEntry {
  seq: number;
  time: Date;
  kind: string;
  actor: string;
  subject: string | null;
  data: AuditData;
  prevHash: string;
  hash: string;
}

export interface AuditLogOptions {
  /** The data directory: checkpoints go to `<home>/audit-checkpoints.jsonl`. None: no checkpoints. */
  home?: string;
  /** HMAC key for checkpoints (held outside the database). */
  key?: Buffer | undefined;
  /** A checkpoint every this many entries (by seq, so several processes do not all write one). Default 100. */
  checkpointEvery?: number;
  logger?: Logger;
  /** Tells whether a string holds a known secret value (the vault's leak detector); such strings are redacted. */
  holdsSecret?: SecretFinder;
  /** Called on every failed write (the hub counts them in bulwark_errors_total{where="audit"}). */
  onFailure?: (err: Error) => void;
}

const KIND = /^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*){0,3}$/;
const MAX_ATTEMPTS = 100;
/** Events waiting to be written; past this, new ones are dropped (and counted) rather than held in memory. */
const MAX_BACKLOG = 10_000;

function isConflict(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  // Another process took this seq first (unique key), or SQLite's write lock was busy.
  return e?.code === 'P2002' || e?.code === 'P2034' || /unique|busy|locked|could not serialize|deadlock/i.test(e?.message ?? '');
}

export function toAuditEntry(row: { seq: number; time: Date; kind: string; actor: string; subject: string | null; data: string; prevHash: string; hash: string }): AuditEntry {
  let data: AuditData;
  try { data = JSON.parse(row.data) as AuditData; } catch { data = { unparseable: true }; }
  return { ...row, data };
}

/** Most entries written by one INSERT. */
const BATCH = 200;

interface Pending { event: AuditEvent; resolve(e: AuditEntry): void; reject(err: Error): void }
type Prepared = { kind: string; actor: string; subject: string | null; data: string };

/**
 * The append-only, hash-chained audit log. Appends are serialized in this process (one drain loop
 * that writes whatever has queued up as one batch: one head read, one multi-row INSERT, one head
 * update, however many events) and across processes: a batch takes seq = head + 1 … head + n, and
 * the primary key on seq lets only one appender have them; the loser moves the head along and
 * retries on the new one. Gateway, worker and scheduler sharing one database therefore keep one
 * chain, on SQLite and PostgreSQL alike.
 */
export class AuditLog {
  /** Writes that failed since start (also reported through `onFailure`). */
  failures = 0;
  private readonly queue: Pending[] = [];
  private draining: Promise<void> | undefined;
  private backlog = 0;
  private lastHead: { seq: number; hash: string } | undefined;
  private checkpointedSeq = -1;
  private closed = false;

  constructor(private readonly db: Db, private readonly opts: AuditLogOptions = {}) {}

  /** Fire-and-forget recording for hot paths: never throws, never makes the caller wait. */
  readonly sink: AuditSink = (event) => this.record(event);

  /** Recording that waits for the commit (see DurableAuditSink). */
  readonly durable: DurableAuditSink = (event) => this.append(event).catch(() => undefined);

  record(event: AuditEvent): void {
    this.append(event).catch(() => undefined);
  }

  /** Appends and resolves with the stored entry; rejects when the write failed (after counting it). */
  append(event: AuditEvent): Promise<AuditEntry> {
    if (this.backlog >= MAX_BACKLOG) return this.failed(event, new Error(`the audit log is ${MAX_BACKLOG} entries behind (database too slow or unreachable): event dropped`));
    this.backlog += 1;
    const run = new Promise<AuditEntry>((resolve, reject) => { this.queue.push({ event, resolve, reject }); }).finally(() => { this.backlog -= 1; });
    this.kick();
    return run.catch((err: Error) => this.failed(event, err));
  }

  private kick(): void {
    this.draining ??= this.drain().finally(() => {
      this.draining = undefined;
      if (this.queue.length > 0) this.kick();
    });
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, BATCH);
      const ready: Array<{ item: Pending; fields: Prepared }> = [];
      for (const item of batch) {
        try {
          ready.push({ item, fields: await this.prepare(item.event) });
        } catch (err) {
          item.reject(err as Error);
        }
      }
      if (ready.length === 0) continue;
      try {
        const entries = await this.appendBatch(ready.map((r) => r.fields));
        ready.forEach((r, i) => r.item.resolve(entries[i]!));
      } catch (err) {
        for (const r of ready) r.item.reject(err as Error);
      }
    }
  }

  private failed(event: AuditEvent, err: Error): Promise<never> {
    this.failures += 1;
    this.opts.onFailure?.(err);
    this.opts.logger?.error({ err: err.message, kind: event.kind }, 'could not write an audit entry');
    return Promise.reject(err);
  }

  /** Resolves once every event recorded so far is written (or has failed). */
  async flush(): Promise<void> {
    while (this.draining) await this.draining.catch(() => undefined);
  }

  /** Writes a checkpoint of the current head now (also done every N entries and on close). */
  async checkpoint(): Promise<{ seq: number; hash: string } | undefined> {
    if (!this.opts.home) return undefined;
    const head = await this.db.auditHead.findUnique({ where: { id: 1 } });
    if (!head || head.seq === 0) return undefined;
    writeCheckpoint(this.opts.home, head, this.opts.key);
    this.checkpointedSeq = head.seq;
    return { seq: head.seq, hash: head.hash };
  }

  /** Flushes and writes a final checkpoint when this process appended since the last one. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.flush();
    if (this.lastHead && this.lastHead.seq !== this.checkpointedSeq) {
      await this.checkpoint().catch((err: Error) => this.opts.logger?.warn({ err: err.message }, 'could not write the closing audit checkpoint'));
    }
  }

  /** Validates and cleans one event: no content fields, no credential formats, no vault secrets. */
  private async prepare(event: AuditEvent): Promise<Prepared> {
    if (!KIND.test(event.kind)) throw new Error(`audit event kind "${event.kind.slice(0, 80)}" is not a dotted lower-case name such as "web.login"`);
    let cleaned = { data: safeAuditData(event.data ?? {}), actor: safeLabel(event.actor) || 'unknown', subject: safeLabel(event.subject) ?? null };
    if (this.opts.holdsSecret) cleaned = await redactKnownSecrets(cleaned, this.opts.holdsSecret);
    return { kind: event.kind, actor: cleaned.actor, subject: cleaned.subject, data: canonicalJson(cleaned.data) };
  }

  private async appendBatch(batch: Prepared[]): Promise<AuditEntry[]> {
    for (let attempt = 1; ; attempt++) {
      const head = await this.db.auditHead.findUnique({ where: { id: 1 } });
      if (!head) throw new Error('the audit chain has no head row (AuditHead id 1): the database was altered; run `bulwark audit verify`');
      const rows: Array<{ seq: number; time: Date; kind: string; actor: string; subject: string | null; data: string; prevHash: string; hash: string }> = [];
      let prev = head.hash;
      for (const [i, f] of batch.entries()) {
        const content = { seq: head.seq + 1 + i, time: new Date(), ...f };
        const hash = entryHash(prev, content);
        rows.push({ ...content, prevHash: prev, hash });
        prev = hash;
      }
      try {
        // The insert is the compare-and-swap: seq is the primary key, so of two appenders that read
        // the same head exactly one gets these seqs (one statement: all rows or none). Each statement
        // commits on its own, so no lock is held across an await (a same-process SQLite writer would
        // otherwise block the event loop).
        await this.db.auditEntry.createMany({ data: rows });
      } catch (err) {
        if (!isConflict(err) || attempt >= MAX_ATTEMPTS) throw err;
        await this.helpHeadAlong(head);
        await new Promise((r) => setTimeout(r, Math.random() * Math.min(20, attempt)));
        continue;
      }
      const last = rows.at(-1)!;
      await this.db.auditHead.updateMany({ where: { id: 1, seq: head.seq }, data: { seq: last.seq, hash: last.hash } });
      this.lastHead = { seq: last.seq, hash: last.hash };
      this.maybeCheckpoint(rows);
      return rows.map(toAuditEntry);
    }
  }

  /**
   * Someone appended after `head` but has not moved the head yet (still about to, or died between
   * the two writes): move it for them, to the entry that links to `head`, so no appender waits on another.
   */
  private async helpHeadAlong(head: { seq: number; hash: string }): Promise<void> {
    const next = await this.db.auditEntry.findUnique({ where: { seq: head.seq + 1 } });
    if (next && next.prevHash === head.hash) {
      await this.db.auditHead.updateMany({ where: { id: 1, seq: head.seq }, data: { seq: next.seq, hash: next.hash } });
    }
  }

  /** Checkpoints every entry of the batch whose seq is a multiple of checkpointEvery. */
  private maybeCheckpoint(rows: Array<{ seq: number; hash: string }>): void {
    const every = this.opts.checkpointEvery ?? 100;
    if (!this.opts.home) return;
    for (const at of rows) {
      if (at.seq % every !== 0) continue;
      try {
        writeCheckpoint(this.opts.home, { seq: at.seq, hash: at.hash }, this.opts.key);
        this.checkpointedSeq = at.seq;
      } catch (err) {
        this.opts.logger?.warn({ err: (err as Error).message }, 'could not write an audit checkpoint');
        return;
      }
    }
  }

}
