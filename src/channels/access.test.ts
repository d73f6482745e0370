import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { startRedis, type Service } from '../../test/support/services.js';
import { AccessControl, type Addressing, type AccessPolicy } from './access.js';
import { CODE_ALPHABET, PairingStore } from './pairing.js';

const policy = (p: Partial<AccessPolicy> = {}): AccessPolicy => ({ owners: ['owner1'], allow: [], groups: [], group_senders: 'anyone', pairing: true, pairing_prompt_minutes: 10, ...p });
const dm = (senderId: string, extra: Partial<Addressing> = {}): Addressing => ({ chatType: 'dm', senderId, senderIsBot: false, fromSelf: false, mentioned: false, replyToBot: false, isCommand: false, ...extra });

describe('access control and pairing (real Redis)', () => {
  let svc: Service;
  let redis: Redis;
  before(async () => { svc = await startRedis(); redis = new Redis(svc.url); });
  after(async () => { redis.disconnect(); await svc.stop(); });
  beforeEach(async () => { await redis.flushall(); });

  it('empty allowlist and no approvals: nobody but the owner', async () => {
    const ac = new AccessControl('telegram', policy({ pairing: false }), new PairingStore(redis));
    assert.deepEqual(await ac.check(dm('owner1')), { pass: true, via: 'owner' });
    assert.deepEqual(await ac.check(dm('stranger')), { pass: false, reason: 'pairing-off' });
    const allow = new AccessControl('telegram', policy({ allow: ['friend'] }), new PairingStore(redis));
    assert.deepEqual(await allow.check(dm('friend')), { pass: true, via: 'allow' });
  });

  it('bots and our own messages are ignored even from allowed ids', async () => {
    const ac = new AccessControl('telegram', policy({ allow: ['b'] }), new PairingStore(redis));
    assert.equal((await ac.check(dm('b', { senderIsBot: true }))).pass, false);
    assert.equal((await ac.check(dm('owner1', { fromSelf: true }))).pass, false);
  });

  it('a code is 8 unambiguous characters, single use, and approval lets the sender in', async () => {
    const store = new PairingStore(redis);
    const ac = new AccessControl('telegram', policy(), store);
    assert.deepEqual(await ac.check(dm('stranger')), { pass: false, reason: 'unknown-sender', pairing: true });
    const r = await store.issue({ channel: 'telegram', senderId: 'stranger', chatId: 'c1' });
    assert.equal(r.kind, 'code');
    const code = (r as { code: string }).code;
    assert.match(code, new RegExp(`^[${CODE_ALPHABET}]{8}$`));
    assert.doesNotMatch(code, /[01OIL]/);
    const again = await store.issue({ channel: 'telegram', senderId: 'stranger', chatId: 'c1' });
    assert.deepEqual(again, { kind: 'code', code, fresh: false }, 'the same sender keeps one code');
    assert.equal((await store.list('telegram')).length, 1);
    assert.equal((await store.approve(code.toLowerCase()))?.senderId, 'stranger', 'codes are case-insensitive');
    assert.equal(await store.approve(code), undefined, 'single use');
    assert.deepEqual(await ac.check(dm('stranger')), { pass: true, via: 'paired' });
    assert.equal((await store.list()).length, 0);
    assert.equal(await store.revoke('telegram', 'stranger'), true);
    assert.equal((await ac.check(dm('stranger'))).pass, false);
  });

  it('approval is per channel: a Telegram pairing does not open Slack', async () => {
    const store = new PairingStore(redis);
    const r = await store.issue({ channel: 'telegram', senderId: 'u1', chatId: 'c' });
    await store.approve((r as { code: string }).code);
    assert.equal((await new AccessControl('slack', policy(), store).check(dm('u1'))).pass, false);
  });

  it('at most 3 pending per channel; a denied code is gone; expiry frees a slot', async () => {
    const store = new PairingStore(redis, 1);
    const codes: string[] = [];
    for (const s of ['a', 'b', 'c']) codes.push((await store.issue({ channel: 'telegram', senderId: s, chatId: s }) as { code: string }).code);
    assert.deepEqual(await store.issue({ channel: 'telegram', senderId: 'd', chatId: 'd' }), { kind: 'full' });
    assert.equal((await store.issue({ channel: 'slack', senderId: 'd', chatId: 'd' })).kind, 'code', 'the cap is per channel');
    assert.equal((await store.deny(codes[0]!))?.senderId, 'a');
    assert.equal(await store.approve(codes[0]!), undefined, 'a denied code cannot be approved');
    assert.equal((await store.issue({ channel: 'telegram', senderId: 'd', chatId: 'd' })).kind, 'code');
    // TTL: 1 s in this store. Poll until the codes have expired.
    const end = Date.now() + 5000;
    while ((await store.list('telegram')).length > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
    assert.equal((await store.list('telegram')).length, 0, 'expired codes leave the list');
    assert.equal(await store.approve(codes[1]!), undefined, 'an expired code cannot be approved');
    assert.equal((await store.issue({ channel: 'telegram', senderId: 'e', chatId: 'e' })).kind, 'code', 'expiry frees slots');
  });

  it('the prompt is re-sent at most once per interval per sender', async () => {
    const store = new PairingStore(redis);
    assert.equal(await store.mayPrompt('telegram', 's', 60), true);
    assert.equal(await store.mayPrompt('telegram', 's', 60), false);
    assert.equal(await store.mayPrompt('telegram', 'other', 60), true);
  });

  it('rejects malformed codes without touching Redis state', async () => {
    const store = new PairingStore(redis);
    for (const bad of ['', 'short', 'AAAAAAA0', '*', 'AAAAAAAAA', '../../x']) assert.equal(await store.approve(bad), undefined);
  });

  describe('groups', () => {
    const g = (extra: Partial<Addressing>): Addressing => ({ ...dm('member'), chatType: 'group', groupId: 'g1', ...extra });

    it('only enabled groups, only when addressed', async () => {
      const ac = new AccessControl('telegram', policy({ groups: ['g1'] }), new PairingStore(redis));
      assert.deepEqual(await ac.check(g({ groupId: 'g2', mentioned: true })), { pass: false, reason: 'group-not-enabled' });
      assert.deepEqual(await ac.check(g({})), { pass: false, reason: 'not-addressed' });
      assert.equal((await ac.check(g({ mentioned: true }))).pass, true);
      assert.equal((await ac.check(g({ replyToBot: true }))).pass, true);
      assert.equal((await ac.check(g({ isCommand: true }))).pass, true);
      assert.equal((await ac.check(g({ mentioned: true, senderIsBot: true }))).pass, false, 'other bots are ignored');
    });

    it('no groups configured = no groups, even for the owner', async () => {
      const ac = new AccessControl('telegram', policy(), new PairingStore(redis));
      assert.equal((await ac.check(g({ senderId: 'owner1', mentioned: true }))).pass, false);
    });

    it('group_senders = allowlist requires a known sender and never prompts for pairing', async () => {
      const ac = new AccessControl('telegram', policy({ groups: ['g1'], group_senders: 'allowlist' }), new PairingStore(redis));
      assert.deepEqual(await ac.check(g({ mentioned: true })), { pass: false, reason: 'not-allowed' });
      assert.deepEqual(await ac.check(g({ senderId: 'owner1', mentioned: true })), { pass: true, via: 'owner' });
    });
  });
});
