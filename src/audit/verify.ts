import type { Db } from '../db/client.js';
import { entryHash, GENESIS_HASH } from './canonical.js';
import { checkpointSigned, readCheckpoints } from './checkpoints.js';

export type ProblemKind = 'edited' | 'missing' | 'relinked' | 'head' | 'truncated' | 'checkpoint' | 'unrecorded';

export interface VerifyProblem {
  kind: ProblemKind;
  /** The entry where the chain stops being trustworthy (0 for problems outside the chain). */
  seq: number;
  message: string;
}

export interface VerifyReport {
  ok: boolean;
  entries: number;
  /** Last seq in the table, and what the head row says. */
  lastSeq: number;
  headSeq: number | null;
  checkpoints: { total: number; signed: number; matched: number };
  /** Stored user messages checked against their `message.accepted` entries, and how many had none. */
  messages: { checked: number; unrecorded: number };
  /** The first broken link of the chain (if any) comes first, then checkpoint problems, then stored messages without their entry. */
  problems: VerifyProblem[];
  /** Things to know that are not proof of tampering (unsigned checkpoints, no key to check them). */
  warnings: string[];
}

const PAGE = 1000;

/**
 * Walks the whole chain in seq order and checks every link: seqs without gaps (a deleted row),
 * each prevHash equal to the previous entry's hash (reordered, replaced or removed rows), each hash
 * equal to the recomputed one (an edited row), the head row equal to the last entry (a deleted
 * tail), and every checkpoint in the file (a rewritten or truncated chain; forged checkpoints).
 * Then every user message in the conversation store must have its `message.accepted` entry (the
 * entry is committed before a message is acknowledged, so a stored message without one was lost
 * from the record or added behind the hub's back).
 */
export async function verifyAudit(db: Db, opts: { home?: string; key?: Buffer | undefined } = {}): Promise<VerifyReport> {
  const problems: VerifyProblem[] = [];
  const warnings: string[] = [];
  const checkpoints = opts.home ? readCheckpoints(opts.home) : [];
  const wanted = new Set(checkpoints.flatMap((c) => (c.checkpoint ? [c.checkpoint.seq] : [])));
  const seen = new Map<number, string>();
  const accepted = new Set<string>();
  let firstTime: Date | undefined;

  let expected = 1;
  let prevHash = GENESIS_HASH;
  let entries = 0;
  let lastSeq = 0;
  let lastHash = GENESIS_HASH;
  let broken = false;
  for (let after = 0; ;) {
    const rows = await db.auditEntry.findMany({ where: { seq: { gt: after } }, orderBy: { seq: 'asc' }, take: PAGE });
    if (rows.length === 0) break;
    for (const row of rows) {
      entries += 1;
      firstTime ??= row.time;
      if (wanted.has(row.seq)) seen.set(row.seq, row.hash);
      if (row.kind === 'message.accepted') {
        const id = acceptedMessageId(row.data);
        if (id) accepted.add(id);
      }
      if (!broken) {
        if (row.seq !== expected) {
          const gap = row.seq - 1 > expected ? `entries ${expected}–${row.seq - 1} are` : `entry ${expected} is`;
          problems.push({ kind: 'missing', seq: expected, message: `${gap} missing: deleted from the log` });
          broken = true;
        } else if (row.prevHash !== prevHash) {
          problems.push({ kind: 'relinked', seq: row.seq, message: `entry ${row.seq} does not link to entry ${row.seq - 1}: rows were reordered or replaced, or entry ${row.seq - 1} was rewritten` });
          broken = true;
        } else if (entryHash(row.prevHash, row) !== row.hash) {
          problems.push({ kind: 'edited', seq: row.seq, message: `entry ${row.seq} (${row.kind.slice(0, 40)}) was edited: its content does not match its hash` });
          broken = true;
        }
      }
      expected = row.seq + 1;
      prevHash = row.hash;
      lastSeq = row.seq;
      lastHash = row.hash;
    }
    after = rows.at(-1)!.seq;
  }

  const head = await db.auditHead.findUnique({ where: { id: 1 } });
  if (!head) {
    problems.push({ kind: 'head', seq: lastSeq, message: 'the chain head row (AuditHead id 1) is missing' });
  } else if (head.seq > lastSeq) {
    problems.push({ kind: 'truncated', seq: lastSeq + 1, message: `the head says the log reaches entry ${head.seq}, but it ends at entry ${lastSeq}: entries were deleted from the end` });
  } else if (head.seq > 0 && head.hash !== (await db.auditEntry.findUnique({ where: { seq: head.seq } }))?.hash) {
    problems.push({ kind: 'head', seq: head.seq, message: `the head row does not match entry ${head.seq}: the head or that entry was changed` });
  } else if (head.seq < lastSeq) {
    // The head moves right after the insert; a process that died in between leaves it behind.
    warnings.push(`the head row is at entry ${head.seq}, behind the last entry ${lastSeq} (an append was in progress, or a process stopped mid-append; the next append moves it)`);
  }

  let signed = 0;
  let matched = 0;
  let unsigned = 0;
  for (const { line, checkpoint: c, problem } of checkpoints) {
    if (!c) {
      problems.push({ kind: 'checkpoint', seq: 0, message: `checkpoint file line ${line} is ${problem}: the file was edited` });
      continue;
    }
    if (opts.key) {
      if (!c.mac) unsigned += 1;
      else if (!checkpointSigned(c, opts.key)) {
        problems.push({ kind: 'checkpoint', seq: c.seq, message: `checkpoint file line ${line} (entry ${c.seq}) has a wrong signature: forged, or signed with another key` });
        continue;
      } else signed += 1;
    } else if (c.mac) unsigned += 1;
    const hash = seen.get(c.seq);
    if (c.seq > lastSeq) {
      problems.push({ kind: 'truncated', seq: lastSeq + 1, message: `the checkpoint of ${c.time} records entry ${c.seq}, but the log ends at entry ${lastSeq}: entries were deleted from the end` });
    } else if (hash === undefined) {
      problems.push({ kind: 'checkpoint', seq: c.seq, message: `the checkpoint of ${c.time} records entry ${c.seq}, which is missing` });
    } else if (hash !== c.hash) {
      problems.push({ kind: 'checkpoint', seq: c.seq, message: `entry ${c.seq} differs from the checkpoint of ${c.time}: the chain up to it was rewritten` });
    } else matched += 1;
  }
  if (opts.key && unsigned > 0) warnings.push(`${unsigned} checkpoint(s) carry no signature (written before a key was configured, or by a process without it)`);
  if (!opts.key && unsigned > 0) warnings.push(`${unsigned} signed checkpoint(s) not checked: no audit key configured here (audit.key_file / BULWARK_AUDIT_KEY)`);
  const messages = await checkMessages(db, accepted, firstTime, problems, warnings);
  if (!opts.home) warnings.push('checkpoints not checked (no data directory given)');
  else if (checkpoints.length === 0 && lastSeq > 0) warnings.push('no checkpoints yet: a rewrite of the whole chain would go unnoticed until one is written');

  return { ok: problems.length === 0, entries, lastSeq, headSeq: head?.seq ?? null, checkpoints: { total: checkpoints.length, signed, matched }, messages, problems, warnings };
}

function acceptedMessageId(data: string): string | undefined {
  try {
    const id = (JSON.parse(data) as { messageId?: unknown }).messageId;
    return typeof id === 'string' ? id : undefined;
  } catch {
    return undefined;
  }
}

/** Problems named one by one up to this many; the rest are counted in one more. */
const NAMED = 20;

/**
 * One pass over the stored user messages (ids only) against the accepted ids collected from the
 * chain. Messages older than the log's first entry were stored before there was an audit log.
 */
async function checkMessages(db: Db, accepted: Set<string>, since: Date | undefined, problems: VerifyProblem[], warnings: string[]): Promise<{ checked: number; unrecorded: number }> {
  let checked = 0;
  let unrecorded = 0;
  for (let after = 0; ;) {
    const rows = await db.message.findMany({ where: { seq: { gt: after }, role: 'user' }, orderBy: { seq: 'asc' }, take: PAGE, select: { seq: true, id: true, conversationId: true, createdAt: true } });
    if (rows.length === 0) break;
    for (const m of rows) {
      if (!since || m.createdAt < since) continue;
      checked += 1;
      if (accepted.has(m.id)) continue;
      unrecorded += 1;
      if (unrecorded <= NAMED) {
        problems.push({ kind: 'unrecorded', seq: 0, message: `message ${m.id.slice(0, 200)} (conversation ${m.conversationId.slice(0, 80)}) is stored but has no message.accepted entry: its entry was lost (a failed audit write, counted in bulwark_errors_total{where="audit"}; or a hub stopped between queueing and recording it) or the message was added behind the hub's back` });
      }
    }
    after = rows.at(-1)!.seq;
  }
  if (unrecorded > NAMED) problems.push({ kind: 'unrecorded', seq: 0, message: `${unrecorded - NAMED} more stored messages have no message.accepted entry` });
  const older = since ? await db.message.count({ where: { role: 'user', createdAt: { lt: since } } }) : await db.message.count({ where: { role: 'user' } });
  if (older > 0) warnings.push(`${older} user message(s) are older than the audit log's first entry and were not checked against it`);
  return { checked, unrecorded };
}
