import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ConversationStore } from '../conversations/store.js';
import { compactDb, openDb, resolveDbTarget, type Db } from '../db/client.js';
import { DecryptionError } from './crypto.js';
import { openVaultOn, webhookKeySealer } from './index.js';
import { RoutineStore } from '../routines/store.js';
import { draftSchema } from '../routines/spec.js';
import { generateKey, keyFilePath, loadMasterKey, pendingKeyFilePath, writeKeyFile } from './master-key.js';
import { Vault } from './vault.js';

const GH = 'ghp_vaultTestValue0123456789abcdefABCDEF';
const STRIPE = 'sk_test_51VaultTestValueQwErTy9876';
const policy = { hosts: ['api.github.com'], headers: ['Authorization: Bearer {value}'] };

/** Every byte the SQLite database has on disk (main file and write-ahead log). */
function dbBytes(home: string): string {
  return readdirSync(home).filter((f) => f.startsWith('bulwark.db')).map((f) => readFileSync(join(home, f)).toString('latin1')).join('');
}

async function fresh(): Promise<{ home: string; db: Db; close(): Promise<void> }> {
  const home = mkdtempSync(join(tmpdir(), 'bulwark-vault-'));
  const db = await openDb(resolveDbTarget(undefined, home));
  return { home, db, close: async () => { await db.$disconnect(); rmSync(home, { recursive: true, force: true }); } };
}

describe('vault: secrets at rest', () => {
  let t: Awaited<ReturnType<typeof fresh>>;
  let vault: Vault;
  before(async () => {
    t = await fresh();
    ({ vault } = await openVaultOn(t.db, t.home, { create: true, env: {} }));
    await vault.add('GH', GH, policy);
    await vault.add('STRIPE', STRIPE, { hosts: ['api.stripe.com'], query: ['key'], methods: ['GET'] });
  });
  after(() => t.close());

  it('round-trips values; list shows names and policies only; the database file holds no value', async () => {
    assert.equal((await vault.get('GH'))!.value, GH);
    assert.deepEqual((await vault.get('GH'))!.policy.hosts, ['api.github.com']);
    assert.equal(await vault.get('NOPE'), undefined);
    const list = await vault.list();
    assert.deepEqual(list.map((s) => s.name), ['GH', 'STRIPE']);
    assert.ok(!JSON.stringify(list).includes(GH));
    const disk = dbBytes(t.home);
    assert.ok(disk.length > 0);
    for (const v of [GH, STRIPE, Buffer.from(GH).toString('base64')]) assert.ok(!disk.includes(v), 'a value is on disk in the clear');
  });

  it('the master key file is created 0600 and the key never reaches the database', () => {
    const path = keyFilePath(t.home);
    assert.equal(readFileSync(path, 'utf8').trim().length, 44);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.ok(!dbBytes(t.home).includes(readFileSync(path, 'utf8').trim()));
  });

  it('refuses bad names, policies without hosts or placement, plain http to a public host, and duplicates', async () => {
    await assert.rejects(vault.add('1bad name', 'x'.repeat(10), policy), /secret name/);
    await assert.rejects(vault.add('X', 'x'.repeat(10), { hosts: [], headers: ['A: {value}'] }), /at least one destination host/);
    await assert.rejects(vault.add('X', 'x'.repeat(10), { hosts: ['a.example'] }), /say where the value may go/);
    await assert.rejects(vault.add('X', 'x'.repeat(10), { hosts: ['http://example.com:80'], body: true }), /plain http is only allowed for a loopback/);
    await assert.rejects(vault.add('X', 'x'.repeat(10), { hosts: ['*example.com'], body: true }), /invalid/);
    await assert.rejects(vault.add('GH', 'other-value-123', policy), /already exists/);
    await vault.add('telegram.token', '123456:AAHfakeTelegramTokenValue', {});
    assert.deepEqual((await vault.get('telegram.token'))!.policy.hosts, [], 'a channel credential has no destinations');
    await assert.rejects(vault.add('slack.bot_token', 'xoxb-fake-value-123', { hosts: ['slack.com'], headers: ['Authorization: Bearer {value}'] }), /channel credential/);
    await vault.add('LOCAL', 'local-secret-value', { hosts: ['http://127.0.0.1:8080', '*.example.com'], body: true });
    assert.deepEqual((await vault.get('LOCAL'))!.policy.hosts, ['http://127.0.0.1:8080', '*.example.com']);
    assert.equal(await vault.remove('LOCAL'), true);
    assert.equal(await vault.remove('LOCAL'), false);
  });
});

describe('vault: tampering is refused, loudly', () => {
  let t: Awaited<ReturnType<typeof fresh>>;
  let vault: Vault;
  const row = async (name: string) => (await t.db.secret.findUnique({ where: { name } }))!;
  before(async () => {
    t = await fresh();
    ({ vault } = await openVaultOn(t.db, t.home, { create: true, env: {} }));
  });
  after(() => t.close());

  const reset = async () => {
    for (const s of await vault.list()) await vault.remove(s.name);
    await vault.add('GH', GH, policy);
    await vault.add('STRIPE', STRIPE, { hosts: ['api.stripe.com'], query: ['key'] });
  };
  const flip = (s: string, part: number) => {
    const parts = s.split('.');
    const p = parts[part]!;
    parts[part] = (p[0] === 'A' ? 'B' : 'A') + p.slice(1);
    return parts.join('.');
  };

  it('an edited ciphertext', async () => {
    await reset();
    await t.db.secret.update({ where: { name: 'GH' }, data: { ciphertext: flip((await row('GH')).ciphertext, 3) } });
    await assert.rejects(vault.get('GH'), DecryptionError);
  });

  it('an edited nonce or salt', async () => {
    await reset();
    const original = (await row('GH')).ciphertext;
    await t.db.secret.update({ where: { name: 'GH' }, data: { ciphertext: flip(original, 2) } });
    await assert.rejects(vault.get('GH'), /could not be decrypted/);
    await t.db.secret.update({ where: { name: 'GH' }, data: { ciphertext: flip(original, 1) } });
    await assert.rejects(vault.get('GH'), /could not be decrypted/);
  });

  it('a policy widened in the database (another host added)', async () => {
    await reset();
    const widened = JSON.stringify({ ...JSON.parse((await row('GH')).policy), hosts: ['api.github.com', 'attacker.example'] });
    await t.db.secret.update({ where: { name: 'GH' }, data: { policy: widened } });
    await assert.rejects(vault.get('GH'), DecryptionError);
    await assert.rejects(vault.entries(), DecryptionError, 'the detector refuses to build on a tampered vault rather than skip the secret');
  });

  it('rows swapped (ciphertexts exchanged) or renamed', async () => {
    await reset();
    const [a, b] = [await row('GH'), await row('STRIPE')];
    await t.db.secret.update({ where: { name: 'GH' }, data: { ciphertext: b.ciphertext } });
    await t.db.secret.update({ where: { name: 'STRIPE' }, data: { ciphertext: a.ciphertext } });
    await assert.rejects(vault.get('GH'), DecryptionError);
    await assert.rejects(vault.get('STRIPE'), DecryptionError);
    await reset();
    await t.db.secret.delete({ where: { name: 'STRIPE' } });
    await t.db.secret.update({ where: { name: 'GH' }, data: { name: 'STRIPE' } });
    await assert.rejects(vault.get('STRIPE'), DecryptionError);
  });

  it('a wrong master key is refused at open, with what to do', async () => {
    await assert.rejects(openVaultOn(t.db, t.home, { create: false, env: { BULWARK_MASTER_KEY: generateKey().toString('base64') } }), /does not open this database's vault[\s\S]*/);
    await assert.rejects(openVaultOn(t.db, t.home, { create: false, env: { BULWARK_MASTER_KEY: 'too-short' } }), /must be 32 random bytes/);
  });

  it('a key file readable by others is refused, naming the chmod', () => {
    const home = mkdtempSync(join(tmpdir(), 'bulwark-key-'));
    try {
      loadMasterKey(home, { create: true, env: {} });
      chmodSync(keyFilePath(home), 0o644);
      assert.throws(() => loadMasterKey(home, { create: true, env: {} }), /can be read by other users[\s\S]*/);
      try { loadMasterKey(home, { create: true, env: {} }); } catch (err) { assert.equal((err as { fix?: string }).fix, `chmod 600 ${keyFilePath(home)}`); }
      assert.throws(() => loadMasterKey(mkdtempSync(join(tmpdir(), 'bulwark-nokey-')), { create: false, env: {} }), /no master key/);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });
});

describe('conversations encrypted at rest', () => {
  let t: Awaited<ReturnType<typeof fresh>>;
  before(async () => { t = await fresh(); });
  after(() => t.close());

  it('bodies are sealed per conversation: a row moved to another conversation does not open', async () => {
    const { cipher } = await openVaultOn(t.db, t.home, { create: true, env: {} });
    const store = new ConversationStore(t.db, cipher);
    const a = await store.ensureConversation({ id: 'conv-a', channel: 'web', accountId: 'x', chatId: 'a' });
    const b = await store.ensureConversation({ id: 'conv-b', channel: 'web', accountId: 'x', chatId: 'b' });
    await store.appendMessage({ id: 'm-a', conversationId: a, role: 'user', text: 'the launch code is tangerine-42' });
    await store.appendMessage({ id: 'm-b', conversationId: b, role: 'user', text: 'nothing to see' });
    assert.equal((await store.getMessage('m-a'))!.text, 'the launch code is tangerine-42');
    assert.ok(!dbBytes(t.home).includes('tangerine-42'), 'message text on disk in the clear');
    const keys = await t.db.conversation.findMany({ select: { wrappedKey: true } });
    assert.equal(new Set(keys.map((k) => k.wrappedKey)).size, 2, 'each conversation has its own key');
    // Moving a sealed body into another conversation's row (or another message's) does not open it.
    const bodyA = (await t.db.message.findUnique({ where: { id: 'm-a' } }))!.body;
    await t.db.message.update({ where: { id: 'm-b' }, data: { body: bodyA } });
    await assert.rejects(store.getMessage('m-b'), DecryptionError);
    await t.db.message.update({ where: { id: 'm-a' }, data: { role: 'assistant' } });
    await assert.rejects(store.getMessage('m-a'), DecryptionError);
  });

  it('plaintext rows from before the vault are sealed on upgrade without loss (and a second pass does nothing)', async () => {
    const { cipher } = await openVaultOn(t.db, t.home, { create: true, env: {} });
    const store = new ConversationStore(t.db, cipher);
    await t.db.conversation.create({ data: { id: 'old', channel: 'web', accountId: 'x', chatId: 'old' } });
    for (let i = 0; i < 7; i++) await t.db.message.create({ data: { id: `old-${i}`, conversationId: 'old', role: i % 2 ? 'assistant' : 'user', body: `legacy plaintext number ${i} ochre-walrus` } });
    assert.deepEqual((await store.history('old', 10)).map((m) => m.text.slice(-14)), Array.from({ length: 7 }, (_, i) => `${i} ochre-walrus`), 'readable before sealing');
    assert.equal(await store.sealPlaintext(3), 7);
    assert.equal(await store.sealPlaintext(3), 0);
    assert.deepEqual((await store.history('old', 10)).map((m) => m.text), Array.from({ length: 7 }, (_, i) => `legacy plaintext number ${i} ochre-walrus`));
    await compactDb(t.db, 'sqlite');
    assert.ok(!dbBytes(t.home).includes('ochre-walrus'), 'legacy text still on disk after sealing and vacuum');
  });
});

describe('rotate-master', () => {
  it('re-encrypts secrets and conversation keys; the old key opens nothing; an interrupted rotation loses nothing', async () => {
    const t = await fresh();
    try {
      let opened = await openVaultOn(t.db, t.home, { create: true, env: {} });
      await opened.vault.add('GH', GH, policy);
      const store = new ConversationStore(t.db, opened.cipher);
      await store.ensureConversation({ id: 'c1', channel: 'web', accountId: 'x', chatId: 'c1' });
      await store.appendMessage({ id: 'm1', conversationId: 'c1', role: 'user', text: 'kept across rotations' });
      const oldKey = readFileSync(keyFilePath(t.home), 'utf8').trim();
      const routines = new RoutineStore(t.db, webhookKeySealer(opened.vault));
      const { routine, secret: hookKey } = await routines.create(draftSchema.parse({ name: 'hook', target: { channel: 'web', accountId: 'x', chatId: 'c1' }, trigger: { type: 'webhook' }, instructions: 'x', maxTokensPerRun: 1000 }), { owner: 'o' });
      assert.ok(hookKey && !dbBytes(t.home).includes(hookKey), 'the webhook key is stored sealed');

      // 1. Interrupted before the transaction: master.key.next exists, the database still uses the old key.
      writeKeyFile(pendingKeyFilePath(t.home), generateKey());
      opened = await openVaultOn(t.db, t.home, { create: false, env: {} });
      assert.ok(!existsSync(pendingKeyFilePath(t.home)), 'the unused pending key is discarded');
      assert.equal((await opened.vault.get('GH'))!.value, GH);

      // 2. Interrupted after the commit, before the new key file replaced the old one.
      const next = generateKey();
      writeKeyFile(pendingKeyFilePath(t.home), next);
      const counts = await opened.vault.rotateMaster(next);
      assert.deepEqual(counts, { secrets: 1, conversations: 1 });
      assert.equal(await new RoutineStore(t.db, webhookKeySealer(opened.vault)).webhookSecret(routine.id), hookKey, 'webhook keys are re-sealed too');
      assert.equal(readFileSync(keyFilePath(t.home), 'utf8').trim(), oldKey, 'simulated crash: old key file still in place');
      opened = await openVaultOn(t.db, t.home, { create: false, env: {} });
      assert.equal(readFileSync(keyFilePath(t.home), 'utf8').trim(), next.toString('base64'), 'the next start finishes the rotation');
      assert.equal((await opened.vault.get('GH'))!.value, GH);
      assert.equal((await new ConversationStore(t.db, opened.cipher).getMessage('m1'))!.text, 'kept across rotations');
      await assert.rejects(openVaultOn(t.db, t.home, { create: false, env: { BULWARK_MASTER_KEY: oldKey } }), /does not open/);
    } finally {
      await t.close();
    }
  });
});
