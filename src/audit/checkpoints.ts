import { createHmac, timingSafeEqual } from 'node:crypto';
import { appendFileSync, existsSync, readFileSync, statSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { z } from 'zod';
import { UserError } from '../errors.js';

/*
 * Checkpoints: the chain's head (seq, hash, time) written now and then to a file outside the
 * database. Someone who rewrites the whole chain in the database (recomputing every hash) still
 * cannot make it agree with checkpoints written earlier; with a key held outside the database and
 * the data directory's backups, they cannot forge new checkpoints either.
 */

export const CHECKPOINT_FILE = 'audit-checkpoints.jsonl';

export interface Checkpoint {
  seq: number;
  hash: string;
  time: string;
  /** HMAC-SHA256 over the other fields, hex; absent when no key is configured. */
  mac?: string;
}

const lineSchema = z.strictObject({
  seq: z.number().int().min(0),
  hash: z.string().regex(/^[0-9a-f]{64}$/),
  time: z.string().min(1).max(64),
  mac: z.string().regex(/^[0-9a-f]{64}$/).optional(),
});

export const checkpointPath = (home: string) => join(home, CHECKPOINT_FILE);

function macOf(key: Buffer, c: Omit<Checkpoint, 'mac'>): string {
  return createHmac('sha256', key).update(`bulwark-audit-checkpoint\n${c.seq}\n${c.hash}\n${c.time}`).digest('hex');
}

/** Appends one checkpoint line (O_APPEND: lines from several processes do not interleave). */
export function writeCheckpoint(home: string, head: { seq: number; hash: string }, key?: Buffer): Checkpoint {
  const base = { seq: head.seq, hash: head.hash, time: new Date().toISOString() };
  const c: Checkpoint = key ? { ...base, mac: macOf(key, base) } : base;
  appendFileSync(checkpointPath(home), `${JSON.stringify(c)}\n`, { mode: 0o600 });
  return c;
}

export interface ReadCheckpoint { line: number; checkpoint?: Checkpoint; problem?: string }

/** Every line of the checkpoint file, each parsed or with the reason it could not be. */
export function readCheckpoints(home: string): ReadCheckpoint[] {
  const file = checkpointPath(home);
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').split('\n').map((raw, i) => ({ raw, line: i + 1 })).filter((l) => l.raw.trim() !== '').map(({ raw, line }) => {
    let json: unknown;
    try { json = JSON.parse(raw); } catch { return { line, problem: 'not valid JSON' }; }
    const parsed = lineSchema.safeParse(json);
    return parsed.success ? { line, checkpoint: parsed.data } : { line, problem: `not a checkpoint (${parsed.error.issues[0]?.path.join('.')}: ${parsed.error.issues[0]?.message})` };
  });
}

/** Whether the checkpoint's MAC is right for `key`. */
export function checkpointSigned(c: Checkpoint, key: Buffer): boolean {
  if (!c.mac) return false;
  const want = Buffer.from(macOf(key, c), 'hex');
  return timingSafeEqual(want, Buffer.from(c.mac, 'hex'));
}

/**
 * The checkpoint signing key: `audit.key` (BULWARK_AUDIT_KEY) or the file at `audit.key_file`
 * (BULWARK_AUDIT_KEY_FILE), which must not be readable by other users. Undefined when neither is set.
 */
export function loadAuditKey(audit: { key?: string | undefined; key_file?: string | undefined }, home: string): Buffer | undefined {
  if (audit.key) return Buffer.from(audit.key, 'utf8');
  if (!audit.key_file) return undefined;
  const file = isAbsolute(audit.key_file) ? audit.key_file : resolve(home, audit.key_file);
  if (!existsSync(file)) throw new UserError(`the audit key file ${file} does not exist.`, `create it: openssl rand -base64 32 > ${file} && chmod 600 ${file}; or unset audit.key_file`);
  if ((statSync(file).mode & 0o077) !== 0) throw new UserError(`the audit key file ${file} is readable by other users.`, `run chmod 600 ${file}`);
  const key = readFileSync(file, 'utf8').trim();
  if (key.length < 16) throw new UserError(`the audit key in ${file} is shorter than 16 characters.`, `write a longer one: openssl rand -base64 32 > ${file}`);
  return Buffer.from(key, 'utf8');
}
