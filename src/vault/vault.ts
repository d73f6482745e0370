import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import type { Db } from '../db/client.js';
import { UserError } from '../errors.js';
import { MIN_SECRET_LENGTH, type SecretEntry } from './leak.js';
import { DecryptionError, openWithMaster, sealWithMaster } from './crypto.js';
import { discardPendingKey, pendingKeyFilePath, promotePendingKey, readKeyFile, type MasterKey } from './master-key.js';
import { canonicalPolicy, checkEgressPolicy, secretNameSchema, secretPolicySchema, type SecretPolicy } from './policy.js';
import type { SecretSource } from './source.js';
import { CONVERSATION_KEY_INFO, conversationKeyAad } from './conversation-keys.js';

/*
 * The encrypted credential store: the only code that decrypts a secret. Each value is sealed with
 * AES-256-GCM under a key derived (HKDF-SHA256, random salt) from the master key, with associated
 * data binding it to the row's id, name and policy. The hub hands the agent an Egress built on this,
 * never the vault itself.
 */

const SECRET_INFO = 'bulwark/secret/v1';
const FIELD_INFO = 'bulwark/field/v1';
const CHECK_INFO = 'bulwark/check/v1';
const CHECK_PLAINTEXT = Buffer.from('bulwark master key check');
const CHECK_AAD = 'vault-check';

const secretAad = (id: string, name: string, policy: string) => JSON.stringify(['secret', id, name, policy]);

export interface SecretInfo { name: string; policy: SecretPolicy; createdAt: Date; updatedAt: Date }

export class Vault implements SecretSource {
  private cache: { version: number; entries: SecretEntry[] } | undefined;

  private constructor(private readonly db: Db, private master: Buffer) {}

  /**
   * Opens the vault with the master key, checking the key against the database. Finishes or undoes
   * an interrupted rotation (`master.key.next` left in the data directory), so it never loses data.
   */
  static async open(db: Db, master: MasterKey, home: string): Promise<Vault> {
    const check = await db.vaultMeta.findUnique({ where: { key: 'check' } });
    if (!check) {
      await db.vaultMeta.upsert({ where: { key: 'check' }, create: { key: 'check', value: sealWithMaster(master.key, CHECK_INFO, CHECK_PLAINTEXT, CHECK_AAD) }, update: {} });
      return new Vault(db, master.key);
    }
    const pending = pendingKeyFilePath(home);
    if (opensCheck(master.key, check.value)) {
      // A rotation stopped before its transaction committed: the database still uses this key.
      if (master.source === 'file' && existsSync(pending)) discardPendingKey(home);
      return new Vault(db, master.key);
    }
    if (master.source === 'file' && existsSync(pending)) {
      const next = readKeyFile(pending);
      if (opensCheck(next, check.value)) {
        // The rotation committed but the new key file was not yet put in place: finish it.
        promotePendingKey(home);
        return new Vault(db, next);
      }
    }
    throw new UserError(
      `the master key ${master.source === 'env' ? 'in BULWARK_MASTER_KEY' : `in ${master.path}`} does not open this database's vault.`,
      'use the key this data directory was created with (restore master.key from your backup, or set BULWARK_MASTER_KEY to it); without it the stored secrets and messages cannot be read',
    );
  }

  /** The master key, for the conversation cipher (same module, same trust). */
  masterKey(): Buffer {
    return this.master;
  }

  /**
   * Seals a host-held key that lives outside the Secret table (a routine's webhook HMAC key), bound
   * to `context` (which row it belongs to). Rotation re-seals these too.
   */
  sealField(context: string, value: string): string {
    return sealWithMaster(this.master, FIELD_INFO, Buffer.from(value, 'utf8'), JSON.stringify(['field', context]));
  }

  openField(context: string, sealed: string): string {
    return openWithMaster(this.master, FIELD_INFO, sealed, JSON.stringify(['field', context]), context).toString('utf8');
  }

  async add(name: string, value: string, policyInput: unknown, opts: { replace?: boolean } = {}): Promise<void> {
    const parsedName = secretNameSchema.safeParse(name);
    if (!parsedName.success) throw new UserError(`secret name "${name.slice(0, 80)}" ${parsedName.error.issues[0]!.message}.`);
    const parsed = secretPolicySchema.safeParse(policyInput);
    if (!parsed.success) throw new UserError(`the policy of ${name} is invalid: ${parsed.error.issues.map((i) => i.message).join('; ')}.`);
    const problem = checkEgressPolicy(name, parsed.data);
    if (problem) throw new UserError(`the policy of ${name} is invalid: ${problem}.`);
    if (value.length < MIN_SECRET_LENGTH) throw new UserError(`the value of ${name} is ${value.length === 0 ? 'empty' : `shorter than ${MIN_SECRET_LENGTH} characters`}.`, value.length === 0 ? 'pipe the value on stdin or type it at the prompt' : 'a value that short could not be told apart from ordinary text by the leak detector, so it could not be guarded');
    if (value.length > 16_384) throw new UserError(`the value of ${name} is longer than 16 KiB.`);
    const policy = canonicalPolicy(parsed.data);
    const id = randomUUID();
    const ciphertext = sealWithMaster(this.master, SECRET_INFO, Buffer.from(value, 'utf8'), secretAad(id, name, policy));
    const existing = await this.db.secret.findUnique({ where: { name }, select: { id: true } });
    if (existing && !opts.replace) throw new UserError(`a secret named ${name} already exists.`, `remove it first (\`bulwark secret rm ${name}\`) or pass --replace`);
    await this.db.$transaction(async (tx) => {
      if (existing) await tx.secret.delete({ where: { name } });
      await tx.secret.create({ data: { id, name, policy, ciphertext } });
      await bumpVersion(tx as unknown as Db);
    });
  }

  async remove(name: string): Promise<boolean> {
    return this.db.$transaction(async (tx) => {
      const { count } = await tx.secret.deleteMany({ where: { name } });
      if (count > 0) await bumpVersion(tx as unknown as Db);
      return count > 0;
    });
  }

  /** Names and policies, never values. */
  async list(): Promise<SecretInfo[]> {
    const rows = await this.db.secret.findMany({ orderBy: { name: 'asc' }, select: { name: true, policy: true, createdAt: true, updatedAt: true } });
    return rows.map((r) => ({ name: r.name, policy: secretPolicySchema.parse(JSON.parse(r.policy)), createdAt: r.createdAt, updatedAt: r.updatedAt }));
  }

  async get(name: string): Promise<{ value: string; policy: SecretPolicy } | undefined> {
    const row = await this.db.secret.findUnique({ where: { name } });
    if (!row) return undefined;
    const value = openWithMaster(this.master, SECRET_INFO, row.ciphertext, secretAad(row.id, row.name, row.policy), `secret ${row.name}`).toString('utf8');
    return { value, policy: secretPolicySchema.parse(JSON.parse(row.policy)) };
  }

  async entries(): Promise<SecretEntry[]> {
    const version = await this.version();
    if (this.cache?.version === version) return this.cache.entries;
    const rows = await this.db.secret.findMany({ orderBy: { name: 'asc' } });
    const entries = rows.map((row) => ({
      name: row.name,
      value: openWithMaster(this.master, SECRET_INFO, row.ciphertext, secretAad(row.id, row.name, row.policy), `secret ${row.name}`).toString('utf8'),
    }));
    this.cache = { version, entries };
    return entries;
  }

  async version(): Promise<number> {
    const row = await this.db.vaultMeta.findUnique({ where: { key: 'version' } });
    return row ? Number(row.value) : 0;
  }

  /**
   * Re-encrypts every secret, every conversation's data key and the key check under `next`, in one
   * transaction: either everything uses the new key or nothing changed. The caller persists the new
   * key first (master.key.next) and promotes it after this returns; `open` finishes either half.
   */
  async rotateMaster(next: Buffer): Promise<{ secrets: number; conversations: number }> {
    const old = this.master;
    const counts = await this.db.$transaction(async (tx) => {
      const secrets = await tx.secret.findMany();
      for (const row of secrets) {
        const aad = secretAad(row.id, row.name, row.policy);
        const value = openWithMaster(old, SECRET_INFO, row.ciphertext, aad, `secret ${row.name}`);
        await tx.secret.update({ where: { id: row.id }, data: { ciphertext: sealWithMaster(next, SECRET_INFO, value, aad) } });
      }
      const conversations = await tx.conversation.findMany({ where: { wrappedKey: { not: null } }, select: { id: true, wrappedKey: true } });
      for (const c of conversations) {
        const aad = conversationKeyAad(c.id);
        const key = openWithMaster(old, CONVERSATION_KEY_INFO, c.wrappedKey!, aad, `the key of conversation ${c.id}`);
        await tx.conversation.update({ where: { id: c.id }, data: { wrappedKey: sealWithMaster(next, CONVERSATION_KEY_INFO, key, aad) } });
      }
      const routines = await tx.routine.findMany({ where: { webhookSecret: { startsWith: 'v1.' } }, select: { id: true, webhookSecret: true } });
      for (const r of routines) {
        const aad = JSON.stringify(['field', webhookContext(r.id)]);
        const value = openWithMaster(old, FIELD_INFO, r.webhookSecret!, aad, `the webhook key of routine ${r.id}`);
        await tx.routine.update({ where: { id: r.id }, data: { webhookSecret: sealWithMaster(next, FIELD_INFO, value, aad) } });
      }
      await tx.vaultMeta.update({ where: { key: 'check' }, data: { value: sealWithMaster(next, CHECK_INFO, CHECK_PLAINTEXT, CHECK_AAD) } });
      await bumpVersion(tx as unknown as Db);
      return { secrets: secrets.length, conversations: conversations.length };
    }, { timeout: 600_000, maxWait: 60_000 });
    this.master = next;
    this.cache = undefined;
    return counts;
  }
}

/** The context a routine's webhook key is sealed under (see RoutineStore). */
export const webhookContext = (routineId: string) => `routine-webhook:${routineId}`;

function opensCheck(key: Buffer, sealed: string): boolean {
  try {
    return openWithMaster(key, CHECK_INFO, sealed, CHECK_AAD, 'the key check').equals(CHECK_PLAINTEXT);
  } catch (err) {
    if (err instanceof DecryptionError) return false;
    throw err;
  }
}

async function bumpVersion(tx: Db): Promise<void> {
  const row = await tx.vaultMeta.findUnique({ where: { key: 'version' } });
  const next = String((row ? Number(row.value) : 0) + 1);
  await tx.vaultMeta.upsert({ where: { key: 'version' }, create: { key: 'version', value: next }, update: { value: next } });
}
