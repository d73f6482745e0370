import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { startRedis, type Service } from '../../test/support/services.js';
import { silentLogger } from '../logger.js';
import { BROADCAST_MENTION } from './access.js';
import { backoffMs, scrub } from './connection.js';
import { DeliveryLedger, RateLimiter, RetryAfter, SendOutcomeUnknown, deliverChunks } from './delivery.js';

describe('delivery ledger (real Redis)', () => {
  let svc: Service;
  let redis: Redis;
  before(async () => { svc = await startRedis(); redis = new Redis(svc.url); });
  after(async () => { redis.disconnect(); await svc.stop(); });
  beforeEach(async () => { await redis.flushall(); });

  const run = (sendChunk: (t: string, i: number) => Promise<string>, messageId = 'reply/1') => deliverChunks({
    channel: 'telegram', messageId, chat: 'c', chunks: ['a', 'b', 'c'], ledger: new DeliveryLedger(redis, 'telegram'),
    limiter: new RateLimiter(0, 1000), logger: silentLogger(), sendChunk,
  });

  it('a retried delivery sends only the chunks that did not go out', async () => {
    const wire: string[] = [];
    let failOnce = true;
    await assert.rejects(run(async (t) => { if (t === 'b' && failOnce) { failOnce = false; throw new Error('ECONNREFUSED'); } wire.push(t); return `p-${t}`; }), /ECONNREFUSED/);
    assert.deepEqual(wire, ['a']);
    const report = await run(async (t) => { wire.push(t); return `p-${t}`; });
    assert.deepEqual(wire, ['a', 'b', 'c'], 'each chunk exactly once over both attempts');
    assert.deepEqual(report, { sent: 2, skipped: 1, unknown: [] });
    assert.deepEqual(await new DeliveryLedger(redis, 'telegram').platformIds('reply/1'), ['p-a', 'p-b', 'p-c']);
    const again = await run(async (t) => { wire.push(t); return t; });
    assert.equal(again.sent, 0, 'a redelivered job sends nothing');
  });

  it('an unknown outcome is not repeated, and delivery goes on', async () => {
    const wire: string[] = [];
    const report = await run(async (t) => { wire.push(t); if (t === 'b') throw new SendOutcomeUnknown('socket reset after write'); return t; });
    assert.deepEqual(wire, ['a', 'b', 'c']);
    assert.deepEqual(report.unknown, [1]);
    await run(async (t) => { wire.push(t); return t; });
    assert.deepEqual(wire, ['a', 'b', 'c'], 'b is not sent a second time');
  });

  it('a chunk left "pending" by a crashed attempt counts as unknown, not re-sent', async () => {
    await redis.hset('bulwark:ledger:telegram:reply/9', 'c0', 'sent:1', 'c1', 'pending');
    const wire: string[] = [];
    const report = await run(async (t) => { wire.push(t); return t; }, 'reply/9');
    assert.deepEqual(wire, ['c']);
    assert.deepEqual(report.unknown, [1]);
  });

  it('RetryAfter leaves the chunk unsent for the next attempt', async () => {
    const wire: string[] = [];
    await assert.rejects(run(async (t) => { if (t === 'a') throw new RetryAfter(2000); wire.push(t); return t; }), RetryAfter);
    await run(async (t) => { wire.push(t); return t; });
    assert.deepEqual(wire, ['a', 'b', 'c']);
  });
});

describe('rate limiter', () => {
  it('spaces messages to one chat and caps the global rate', async () => {
    const l = new RateLimiter(200, 1000);
    const t0 = Date.now();
    await l.wait('x'); await l.wait('x'); await l.wait('x');
    assert.ok(Date.now() - t0 >= 390, 'three messages to one chat take at least two gaps');
    const g = new RateLimiter(0, 3);
    const t1 = Date.now();
    for (let i = 0; i < 4; i++) await g.wait(`chat${i}`);
    assert.ok(Date.now() - t1 >= 990, 'the fourth message in a second waits for the window');
    // A minute-long per-chat gap: if chat b waited for chat a, the race would be lost by far.
    const free = new RateLimiter(60_000, 100);
    await free.wait('a');
    let timer: NodeJS.Timeout | undefined;
    const won = await Promise.race([free.wait('b').then(() => 'b'), new Promise((r) => { timer = setTimeout(() => r('timeout'), 20_000); })]);
    clearTimeout(timer);
    assert.equal(won, 'b', 'different chats do not wait for each other');
  });
});

describe('helpers', () => {
  it('backoff grows and stays within bounds, with jitter', () => {
    assert.equal(backoffMs(0, 1000, 60_000, () => 0), 500);
    assert.equal(backoffMs(3, 1000, 60_000, () => 1), 8000);
    assert.equal(backoffMs(30, 1000, 60_000, () => 1), 60_000);
  });
  it('scrub removes tokens, including Telegram URL forms', () => {
    const token = '123456789:AAH-very_secret_token_value_1234567';
    const msg = `request to https://api.telegram.org/bot${token}/getMe failed; token ${token}`;
    const out = scrub(msg, [token]);
    assert.ok(!out.includes('AAH-very'), out);
    assert.ok(!scrub(`https://api.telegram.org/bot${token}/x`, []).includes('AAH-very'));
    assert.ok(!scrub('xoxb-1234567890-abcdefghij', []).includes('xoxb-1234567890'));
  });
  it('@everyone/@here/@channel/<!here> are recognised as broadcast, not mentions', () => {
    for (const s of ['@everyone look', 'hi @here', '@channel', '<!here>', '<!channel>']) assert.match(s, BROADCAST_MENTION);
    assert.doesNotMatch('mail me at me@here.com', BROADCAST_MENTION);
  });
});
