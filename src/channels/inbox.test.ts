import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { startRedis, type Service } from '../../test/support/services.js';
import type { TextCipher } from '../conversations/cipher.js';
import { INBOUND, PREFIX } from '../queues.js';
import { dedupeKey, Inbox, pendingKey } from './inbox.js';
import { inboundJobId } from './contract.js';

const cipher: TextCipher = { seal: async (_c, _ctx, text) => text, open: async (_c, _ctx, sealed) => sealed };
const message = (messageId: string) => ({
  channel: 'web', accountId: 'local', chatId: 'c_inboxtest1', conversationId: 'c_inboxtest1', messageId,
  chatType: 'dm' as const, sender: { id: 'owner', name: 'owner', isBot: false }, text: 'hello', receivedAt: Date.now(),
});

describe('inbox (real Redis)', () => {
  let svc: Service;
  let redis: Redis;
  let queue: Queue;
  before(async () => {
    svc = await startRedis();
    redis = new Redis(svc.url);
    queue = new Queue(INBOUND, { connection: { host: '127.0.0.1', port: Number(new URL(svc.url).port) }, prefix: PREFIX });
  });
  after(async () => { await queue.close(); redis.disconnect(); await svc.stop(); });
  beforeEach(async () => { await redis.flushall(); });

  it('a message whose job could not be queued leaves nothing behind, and its retry is accepted', async () => {
    const failing = Object.assign(Object.create(queue) as Queue, { add: async () => { throw new Error("Stream isn't writeable and enableOfflineQueue options is false"); } });
    const msg = message('m_notqueued');
    const jobId = inboundJobId(msg);
    await assert.rejects(new Inbox(redis, failing, cipher).accept(msg), /Stream isn't writeable/);
    assert.equal(await redis.exists(dedupeKey(jobId)), 0, 'no dedupe marker');
    assert.equal(await redis.zscore(pendingKey(msg.conversationId), jobId), null, 'not pending in its conversation');

    const retried = await new Inbox(redis, queue, cipher).accept(msg);
    assert.equal(retried.duplicate, false);
    assert.ok(await queue.getJob(jobId));
  });

  it('a failed add whose job did get queued (e.g. by a concurrent retry) keeps the marker and the pending entry', async () => {
    const msg = message('m_queuedanyway');
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
