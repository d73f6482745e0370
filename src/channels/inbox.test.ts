import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import type { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { startRedis, type Service } from '../../test/support/services.js';
import { openDb, resolveDbTarget, type Db } from '../db/client.js';
import type { TextCipher } from '../conversations/cipher.js';
import { createQueue, INBOUND } from '../queues.js';
import { openVaultOn } from '../vault/index.js';
import { inboundJobId, type InboundMessage } from './contract.js';
import { dedupeKey, Inbox, pendingKey } from './inbox.js';

describe('inbox: dedupe, per-conversation order and failed adds (real Redis, real cipher)', () => {
  let svc: Service;
  let redis: Redis;
  let queue: Queue;
  let db: Db;
  let home: string;
  let inbox: Inbox;
  let cipher: TextCipher;

  before(async () => {
    svc = await startRedis();
    redis = new Redis(svc.url);
    queue = createQueue(INBOUND, { url: svc.url });
    home = mkdtempSync(join(tmpdir(), 'bulwark-inbox-'));
    db = await openDb(resolveDbTarget(undefined, home));
    ({ cipher } = await openVaultOn(db, home, { create: true, env: {} }));
    inbox = new Inbox(redis, queue, cipher);
  });
  after(async () => {
    await queue.close();
    redis.disconnect();
    await db.$disconnect();
    rmSync(home, { recursive: true, force: true });
    await svc.stop();
  });
  beforeEach(async () => { await redis.flushall(); });

  const message = (messageId: string, receivedAt: number, conversationId = 'c_order12345'): InboundMessage & { conversationId: string } => ({
    channel: 'web', accountId: 'local', chatId: conversationId, conversationId, messageId, chatType: 'dm',
    sender: { id: 'owner', isBot: false }, text: `text of ${messageId}`, receivedAt,
  });
  const order = async (conversationId = 'c_order12345') => redis.zrange(pendingKey(conversationId), 0, -1);

  it('two messages accepted in the same millisecond keep the order they were taken in, not job-id order', async () => {
    const now = Date.now();
    // 'zz' sorts after 'aa': scored by time, the set would put the later message first.
    await inbox.accept(message('zz', now));
    await inbox.accept(message('aa', now));
    await inbox.accept(message('mm', now - 5_000)); // a gateway whose clock is behind: still third
    assert.deepEqual(await order(), ['zz', 'aa', 'mm'].map((m) => inboundJobId({ channel: 'web', accountId: 'local', messageId: m })));
  });

  it('goes on after a pending set scored by accept time (an earlier version) instead of jumping ahead', async () => {
    const old = inboundJobId({ channel: 'web', accountId: 'local', messageId: 'from-old-version' });
    await redis.zadd(pendingKey('c_order12345'), Date.now(), old);
    await inbox.accept(message('new-one', 1));
    assert.deepEqual(await order(), [old, inboundJobId({ channel: 'web', accountId: 'local', messageId: 'new-one' })]);
  });

  it('a redelivery is a duplicate and keeps its place', async () => {
    const now = Date.now();
    assert.equal((await inbox.accept(message('first', now))).duplicate, false);
    assert.equal((await inbox.accept(message('second', now))).duplicate, false);
    assert.equal((await inbox.accept(message('first', now + 10))).duplicate, true);
    assert.deepEqual(await order(), ['first', 'second'].map((m) => inboundJobId({ channel: 'web', accountId: 'local', messageId: m })));
  });

  it('a retried first message finds the conversation its first try started', async () => {
    const a = await inbox.firstConversation('web', 'client-1', 'c_firsttry001');
    const b = await inbox.firstConversation('web', 'client-1', 'c_secondtry01');
    const other = await inbox.firstConversation('cli', 'client-1', 'c_othercli001');
    assert.equal(a, 'c_firsttry001');
    assert.equal(b, 'c_firsttry001', 'the retry lands where the first try went');
    assert.equal(other, 'c_othercli001', 'another channel is another client');
  });

  it('a message whose job could not be queued leaves nothing behind, and its retry is accepted', async () => {
    const failing = Object.assign(Object.create(queue) as Queue, { add: async () => { throw new Error("Stream isn't writeable and enableOfflineQueue options is false"); } });
    const msg = message('m_notqueued', Date.now());
    const jobId = inboundJobId(msg);
    await assert.rejects(new Inbox(redis, failing, cipher).accept(msg), /Stream isn't writeable/);
    assert.equal(await redis.exists(dedupeKey(jobId)), 0, 'no dedupe marker');
    assert.equal(await redis.zscore(pendingKey(msg.conversationId), jobId), null, 'not pending in its conversation');

    const retried = await new Inbox(redis, queue, cipher).accept(msg);
    assert.equal(retried.duplicate, false);
    assert.ok(await queue.getJob(jobId));
  });

  it('a failed add whose job did get queued (e.g. by a concurrent retry) keeps the marker and the pending entry', async () => {
    const msg = message('m_queuedanyway', Date.now());
    const jobId = inboundJobId(msg);
    const flaky = Object.assign(Object.create(queue) as Queue, {
      add: async (...args: Parameters<Queue['add']>) => { await queue.add(...args); throw new Error('Connection is closed.'); },
    });
    await assert.rejects(new Inbox(redis, flaky, cipher).accept(msg), /Connection is closed/);
    assert.equal(await redis.get(dedupeKey(jobId)), 'pending');
    assert.notEqual(await redis.zscore(pendingKey(msg.conversationId), jobId), null);
    assert.equal((await new Inbox(redis, queue, cipher).accept(msg)).duplicate, true);
  });
});
