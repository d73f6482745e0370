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

/**
 * The append-only, hash-chained audit log. Appends are serialized in this process (one promise
 * chain) and across processes: an entry takes seq = head + 1, and the primary key on seq lets only
 * one appender have it; the loser moves the head along and retries on the new one. Gateway, worker
 * and scheduler sharing one database therefore keep one chain, on SQLite and PostgreSQL alike.
 */
export class AuditLog {
  /** Writes that failed since start (also reported through `onFailure`). */
  failures = 0;
  private tail: Promise<unknown> = Promise.resolve();
  private backlog = 0;
  private lastHead: { seq: number; hash: string } | undefined;
  private checkpointedSeq = -1;
  private closed = false;

  constructor(private readonly db: Db, private readonly opts: AuditLogOptions = {}) {}

  /** Fire-and-forget recording for hot paths: never throws, never makes the caller wait. */
  readonly sink: AuditSink = (event) => this.record(event);

  record(event: AuditEvent): void {
    this.append(event).catch(() => undefined);
  }

  /** Appends and resolves with the stored entry; rejects when the write failed (after counting it). */
  append(event: AuditEvent): Promise<AuditEntry> {
    if (this.backlog >= MAX_BACKLOG) return this.failed(event, new Error(`the audit log is ${MAX_BACKLOG} entries behind (database too slow or unreachable): event dropped`));
    this.backlog += 1;
    const run = this.tail.then(() => this.appendNow(event)).finally(() => { this.backlog -= 1; });
    this.tail = run.catch(() => undefined);
    return run.catch((err: Error) => this.failed(event, err));
  }

  private failed(event: AuditEvent, err: Error): Promise<never> {
    this.failures += 1;
    this.opts.onFailure?.(err);
    this.opts.logger?.error({ err: err.message, kind: event.kind }, 'could not write an audit entry');
    return Promise.reject(err);
  }

  /** Resolves once every event recorded so far is written (or has failed). */
  async flush(): Promise<void> {
    await this.tail;
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

  private async appendNow(event: AuditEvent): Promise<AuditEntry> {
    if (!KIND.test(event.kind)) throw new Error(`audit event kind "${event.kind.slice(0, 80)}" is not a dotted lower-case name such as "web.login"`);
    let cleaned = { data: safeAuditData(event.data ?? {}), actor: safeLabel(event.actor) || 'unknown', subject: safeLabel(event.subject) ?? null };
    if (this.opts.holdsSecret) cleaned = await redactKnownSecrets(cleaned, this.opts.holdsSecret);
    const { actor, subject } = cleaned;
    const data = canonicalJson(cleaned.data);
    for (let attempt = 1; ; attempt++) {
      const head = await this.db.auditHead.findUnique({ where: { id: 1 } });
      if (!head) throw new Error('the audit chain has no head row (AuditHead id 1): the database was altered; run `bulwark audit verify`');
      const content = { seq: head.seq + 1, time: new Date(), kind: event.kind, actor, subject, data };
      const hash = entryHash(head.hash, content);
      try {
        // The insert is the compare-and-swap: seq is the primary key, so of two appenders that read
        // the same head exactly one gets this seq. Each statement commits on its own, so no lock is
        // held across an await (a same-process SQLite writer would otherwise block the event loop).
        await this.db.auditEntry.create({ data: { ...content, prevHash: head.hash, hash } });
      } catch (err) {
        if (!isConflict(err) || attempt >= MAX_ATTEMPTS) throw err;
        await this.helpHeadAlong(head);
        await new Promise((r) => setTimeout(r, Math.random() * Math.min(20, attempt)));
        continue;
      }
      await this.db.auditHead.updateMany({ where: { id: 1, seq: head.seq }, data: { seq: content.seq, hash } });
      this.lastHead = { seq: content.seq, hash };
      this.maybeCheckpoint(content.seq, hash);
      return toAuditEntry({ ...content, prevHash: head.hash, hash });
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

  private maybeCheckpoint(seq: number, hash: string): void {
    const every = this.opts.checkpointEvery ?? 100;
    if (!this.opts.home || seq % every !== 0) return;
    try {
      writeCheckpoint(this.opts.home, { seq, hash }, this.opts.key);
      this.checkpointedSeq = seq;
    } catch (err) {
      this.opts.logger?.warn({ err: (err as Error).message }, 'could not write an audit checkpoint');
    }
  }
}
