import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { QueueEvents } from 'bullmq';
import { INBOUND, PREFIX } from '../src/queues.js';
import { startLlmStandIn, lastUserText, type StandIn } from './support/llm-standin.js';
import { startRedis, type Service } from './support/services.js';
import { startTestHub, standInEnv, type TestHub } from './support/hub.js';
import { until } from './support/wait.js';

/*
 * Fairness between conversations: one conversation's backlog, or many conversations whose model
 * never answers, must not hold up anyone else, and a backlog drains at the hub's pace.
 */
describe('fair turns across conversations (real Redis, SQLite, LLM stand-in)', () => {
  let redis: Service;
  let llm: StandIn;
  let t: TestHub;
  /** Released by the test: the model calls of "hang" messages wait for it. */
  let releaseHung!: () => void;
  let hung = new Promise<void>((r) => { releaseHung = r; });

  before(async () => {
    redis = await startRedis();
    llm = await startLlmStandIn(async (req) => {
      const text = lastUserText(req);
      if (text.startsWith('hang')) { await hung; return { text: `late: ${text}` }; }
      return { text: `echo: ${text}` };
    });
    t = await startTestHub({ env: { REDIS_URL: redis.url, ...standInEnv(llm.baseUrl), BULWARK_AGENT_RUN_CODE: 'false' } });
  });
  after(async () => { releaseHung(); await t?.close(); await llm?.close(); await redis?.stop(); });

  /** Every message of a conversation (the API pages at 500). */
  async function allMessages(conversationId: string) {
    const out: Awaited<ReturnType<typeof t.api.messages>> = [];
    for (;;) {
      const page = await t.api.messages(conversationId, out.at(-1)?.seq ?? 0);
      out.push(...page);
      if (page.length < 500) return out;
    }
  }

  it('answers a 300-message backlog of one conversation in order, each turn woken by the one before (no polling)', { timeout: 120_000 }, async () => {
    const events = new QueueEvents(INBOUND, { connection: { host: new URL(redis.url).hostname, port: Number(new URL(redis.url).port) }, prefix: PREFIX });
    await events.waitUntilReady();
    const parks = new Map<string, number>();
    let overParked: string | undefined;
    events.on('delayed', ({ jobId }) => {
      const n = (parks.get(jobId) ?? 0) + 1;
      parks.set(jobId, n);
      if (n > 2) overParked ??= jobId;
    });
    try {
      const first = await t.api.send('m0');
      const conversationId = first.conversationId;
      const ids = [first.messageId];
      for (let i = 1; i < 300; i++) ids.push((await t.api.send(`m${i}`, { conversationId })).messageId);
      await until('the whole backlog answered, or a turn parked a third time', async () => {
        if (overParked) return true;
        const msgs = await allMessages(conversationId);
        return msgs.some((m) => m.replyTo === ids.at(-1)) ? true : undefined;
      }, 110_000);
      assert.equal(overParked, undefined, `job ${overParked} was parked more than twice: waiting turns are polled, not woken`);
      const msgs = await allMessages(conversationId);
      const expected = ids.flatMap((_, i) => [`m${i}`, `echo: m${i}`]);
      assert.deepEqual(msgs.map((m) => m.text), expected, 'one turn at a time, in arrival order');
    } finally {
      await events.close();
    }
  });

  it('16 conversations whose model never answers do not hold up a new conversation', { timeout: 60_000 }, async () => {
    const before = llm.requests.length;
    const stuck = await Promise.all(Array.from({ length: 16 }, (_, i) => t.api.send(`hang ${i}`)));
    await until('all 16 hung model calls in flight', () => llm.requests.slice(before).filter((r) => lastUserText(r).startsWith('hang')).length === 16);
    const quiet = await t.api.send('hello');
    const reply = await t.api.waitReply(quiet.conversationId, quiet.messageId, 20_000);
    assert.equal(reply.text, 'echo: hello');
    for (const s of stuck) {
      const msgs = await t.api.messages(s.conversationId);
      assert.ok(!msgs.some((m) => m.role === 'assistant'), 'the hung conversations are still waiting for their model');
    }
    releaseHung();
    for (const s of stuck) assert.match((await t.api.waitReply(s.conversationId, s.messageId)).text, /^late: hang/);
    hung = new Promise<void>((r) => { releaseHung = r; });
  });
});
