import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { UserError } from '../errors.js';
import { KEY_BYTES } from './crypto.js';

/*
 * The master key: from BULWARK_MASTER_KEY (base64 of 32 bytes) or from `<data dir>/master.key`,
 * created on first run with mode 0600. It never enters the database, logs or the model's context.
 * Losing it makes every secret and every stored message unreadable: that is the point.
 */

export const MASTER_KEY_ENV = 'BULWARK_MASTER_KEY';
/** During `secret rotate-master` with env keys: the key to rotate to. */
export const NEW_MASTER_KEY_ENV = 'BULWARK_NEW_MASTER_KEY';

export interface MasterKey {
  key: Buffer;
  source: 'env' | 'file';
  /** The key file, for source 'file'. */
  path?: string;
}

export const keyFilePath = (home: string) => join(home, 'master.key');
/** Where rotation writes the next key before the database is re-encrypted (see Vault.rotateMaster). */
export const pendingKeyFilePath = (home: string) => join(home, 'master.key.next');

export function parseKey(text: string, where: string): Buffer {
  const trimmed = text.trim();
  const key = Buffer.from(trimmed, /[-_]/.test(trimmed) ? 'base64url' : 'base64');
  if (key.length !== KEY_BYTES || !/^[A-Za-z0-9+/_-]+=*$/.test(trimmed)) {
    throw new UserError(`${where} is not a master key: it must be ${KEY_BYTES} random bytes written in base64.`, 'generate one with `openssl rand -base64 32`');
  }
  return key;
}

/** Refuses a key file other users could read: a readable key is a published key. */
export function checkKeyFileMode(path: string): void {
  const mode = statSync(path).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    throw new UserError(`the master key file ${path} can be read by other users (mode ${mode.toString(8).padStart(4, '0')}).`, `chmod 600 ${path}`);
  }
}

export function readKeyFile(path: string): Buffer {
  checkKeyFileMode(path);
  return parseKey(readFileSync(path, 'utf8'), `the key file ${path}`);
}

/** Writes a key file that only its owner can read, durably, failing if it already exists. */
export function writeKeyFile(path: string, key: Buffer): void {
  const fd = openSync(path, 'wx', 0o600);
  try {
    writeSync(fd, `${key.toString('base64')}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export function generateKey(): Buffer {
  return randomBytes(KEY_BYTES);
}

/**
 * The master key for this data directory. With `create`, a missing key file is generated (first
 * run); without it (CLI commands that only read), a missing key is an error that says what to do.
 */
export function loadMasterKey(home: string, opts: { create: boolean; env?: NodeJS.ProcessEnv }): MasterKey {
  const env = opts.env ?? process.env;
  const fromEnv = env[MASTER_KEY_ENV];
  if (fromEnv !== undefined && fromEnv !== '') return { key: parseKey(fromEnv, MASTER_KEY_ENV), source: 'env' };
  const path = keyFilePath(home);
  if (existsSync(path)) return { key: readKeyFile(path), source: 'file', path };
  if (!opts.create) {
    throw new UserError(`no master key: ${MASTER_KEY_ENV} is not set and ${path} does not exist.`, 'start the hub once (`bulwark start`) to create one, or set BULWARK_MASTER_KEY');
  }
  const key = generateKey();
  writeKeyFile(path, key);
  return { key, source: 'file', path };
}

/** Replaces the key file with the pending one (the last step of a rotation). */
export function promotePendingKey(home: string): void {
  renameSync(pendingKeyFilePath(home), keyFilePath(home));
}

export function discardPendingKey(home: string): void {
  try {
    unlinkSync(pendingKeyFilePath(home));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
