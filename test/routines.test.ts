import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { conversationIdFor } from '../src/channels/contract.js';
import { ConversationStore } from '../src/conversations/store.js';
import { pushEvent } from '../src/routines/heartbeat.js';
import { enqueueRun } from '../src/routines/queue.js';
import { toDraft } from '../src/routines/store.js';
import { startLlmStandIn, lastUserText, type ChatRequest, type Scripted, type StandIn } from './support/llm-standin.js';
import { finished, RecordingChannel, startRecordingOutbox, startRoutineRig, type RoutineRig } from './support/routines.js';
import { startRedis, type Service } from './support/services.js';
import { standInEnv } from './support/hub.js';

const systemOf = (req: ChatRequest) => String(req.messages.find((m) => m.role === 'system')?.content ?? '');
const isHeartbeat = (req: ChatRequest) => systemOf(req).includes('This turn is the heartbeat');
const routineOf = (req: ChatRequest) => /This turn is the routine "([^"]+)"/.exec(systemOf(req))?.[1];

/*
 * A scheduler-role hub over a real Redis and SQLite, the LLM stand-in, and a recording channel fed
 * by the real outbox worker: routines fire through BullMQ job schedulers and their messages travel
 * the same outbound path as chat replies.
 */
describe('routines: scheduling and delivery (scheduler role, real Redis)', () => {
  let redis: Service;
  let llm: StandIn;
  let rig: RoutineRig;
  let outbox: { close(): Promise<void> };
  const channel = new RecordingChannel('standin');
  let verdict: Scripted = { text: '{"notify":false}' };
  const delays = new Map<string, number>();

  before(async () => {
    redis = await startRedis();
    llm = await startLlmStandIn((req) => {
      if (isHeartbeat(req)) return verdict;
      const name = routineOf(req) ?? '?';
      return { text: `${name} says: ${lastUserText(req).split('\n').at(-1)}`, delayMs: delays.get(name) ?? 0 };
    });
    rig = await startRoutineRig({
      role: 'scheduler',
      env: {
        REDIS_URL: redis.url, ...standInEnv(llm.baseUrl), BULWARK_TIMEZONE: 'Europe/Berlin',
        BULWARK_HEARTBEAT_ENABLED: 'true', BULWARK_HEARTBEAT_TO: 'standin:acct:hb', BULWARK_HEARTBEAT_ACTIVE_HOURS: 'always', BULWARK_HEARTBEAT_DAILY_TOKEN_CAP: '3000',
      },
    });
    outbox = startRecordingOutbox(redis.url, channel, rig.cipher);
  });
  after(async () => { await outbox?.close(); await rig?.close(); await llm?.close(); await redis?.stop(); });

  it('an interval routine fires every second and each run is delivered to the channel and stored', async () => {
    const id = await rig.add({ name: 'ticker', trigger: { type: 'interval', everySeconds: 1 } });
    const runs = await rig.runsUntil(id, (rs) => rs.filter((r) => r.outcome === 'delivered').length >= 3);
    const delivered = runs.filter((r) => r.outcome === 'delivered');
    const sent = () => channel.sent.filter((m) => m.chatId === 'chat-ticker');
    const end = Date.now() + 5000;
    while (sent().length < 3 && Date.now() < end) await new Promise((r) => setTimeout(r, 25));
    assert.ok(sent().length >= 3, 'the channel received the messages');
    assert.equal(new Set(sent().map((m) => m.messageId)).size, sent().length, 'each run is one message');
    assert.equal(sent()[0]!.text, 'ticker says: Say something for ticker.');
    assert.equal(sent()[0]!.messageId, delivered[0]!.messageId);
    const scheduled = delivered.map((r) => r.scheduledAt!.getTime());
    for (let i = 1; i < scheduled.length; i++) assert.equal((scheduled[i]! - scheduled[0]!) % 1000, 0, 'ticks stay on the one-second grid');
    const stored = await rig.conversations.history(conversationIdFor({ channel: 'standin', accountId: 'acct', chatId: 'chat-ticker' }), 100);
    assert.ok(stored.length >= 3 && stored.every((m) => m.role === 'assistant'));
    await rig.store.setEnabled(id, false);
    await rig.sync();
    assert.equal(await rig.queue.getJobScheduler(id), undefined, 'disabling a routine removes its scheduler');
  });

  it('a run slower than its interval never overlaps the next: that tick is recorded as skipped_overlap', async () => {
    delays.set('slow', 2200);
    const id = await rig.add({ name: 'slow', trigger: { type: 'interval', everySeconds: 1 } });
    const runs = await rig.runsUntil(id, (rs) => rs.filter((r) => r.outcome === 'delivered').length >= 2 && rs.some((r) => r.outcome === 'skipped_overlap'), 30_000);
    await rig.store.setEnabled(id, false);
    await rig.sync();
    const delivered = runs.filter((r) => r.outcome === 'delivered').sort((a, b) => a.startedAt.getTime() - b.startedAt.getTime());
    for (let i = 1; i < delivered.length; i++) {
      assert.ok(delivered[i]!.startedAt >= delivered[i - 1]!.finishedAt!, `run ${i} started after run ${i - 1} finished`);
    }
    const skipped = runs.find((r) => r.outcome === 'skipped_overlap')!;
    assert.match(skipped.detail!, /previous run .* was still going/);
    assert.equal(skipped.tokensIn + skipped.tokensOut, 0);
  });

  it('a one-shot routine runs once at its time and then switches itself off', async () => {
    const id = await rig.add({ name: 'once', trigger: { type: 'once', runAt: Date.now() + 1000 } });
    const runs = await rig.runsUntil(id, (rs) => finished(rs).length >= 1);
    assert.equal(runs[0]!.outcome, 'delivered');
    assert.equal((await rig.store.get(id))!.enabled, false);
    await rig.sync();
    assert.equal(await rig.queue.getJobScheduler(id), undefined);
  });

  describe('heartbeat', () => {
    let hbId: string;
    const heartbeatCalls = () => llm.requests.filter(isHeartbeat).length;
    const hbSent = () => channel.sent.filter((m) => m.chatId === 'hb');

    before(async () => {
      writeFileSync(join(rig.home, 'HEARTBEAT.md'), '# Checklist\n\n- Tell me when a backup failed.\n');
      const hb = (await rig.store.getByName('owner', 'heartbeat'))!;
      hbId = hb.id;
      assert.equal(hb.kind, 'heartbeat');
      // Configured every 30 minutes; beat every second here.
      await rig.store.update(hb.id, { ...toDraft(hb), trigger: { type: 'interval', everySeconds: 1 } });
      await rig.sync();
    });

    it('notify: false delivers nothing: no message, no marker, the run is recorded as silent', async () => {
      verdict = { text: '{"notify":false}' };
      const runs = await rig.runsUntil(hbId, (rs) => rs.some((r) => r.outcome === 'silent'));
      assert.equal(heartbeatCalls(), 1);
      const silent = runs.find((r) => r.outcome === 'silent')!;
      assert.equal(silent.messageId, null);
      assert.ok(silent.tokensIn > 0, 'tokens are counted');
      assert.deepEqual(hbSent(), []);
      assert.deepEqual(await rig.conversations.history(conversationIdFor({ channel: 'standin', accountId: 'acct', chatId: 'hb' }), 10), []);
      const req = llm.requests.find(isHeartbeat)!;
      assert.ok(req.response_format, 'the verdict is requested as structured output');
    });

    it('with nothing new since the last run, beats are skipped without calling the model', async () => {
      const calls = heartbeatCalls();
      const runs = await rig.runsUntil(hbId, (rs) => rs.filter((r) => r.outcome === 'skipped_no_input').length >= 2);
      assert.equal(heartbeatCalls(), calls, 'no LLM request');
      assert.match(runs.find((r) => r.outcome === 'skipped_no_input')!.detail!, /nothing new since the last heartbeat/);
    });

    it('a webhook event wakes it once: the event reaches the model as untrusted data, then it is quiet again', async () => {
      const calls = heartbeatCalls();
      const client = new Redis(redis.url);
      await pushEvent(client, hbId, JSON.stringify({ backup: 'nightly', status: 'ok' }));
      client.disconnect();
      await rig.runsUntil(hbId, (rs) => rs.filter((r) => r.outcome === 'silent').length === 2);
      assert.equal(heartbeatCalls(), calls + 1);
      assert.match(lastUserText(llm.requests.filter(isHeartbeat).at(-1)!), /"untrusted_data":\[\{"backup":"nightly","status":"ok"\}\]/);
      const quiet = (await rig.store.history(hbId, 1000)).length;
      await rig.runsUntil(hbId, (rs) => rs.length >= quiet + 2);
      assert.equal(heartbeatCalls(), calls + 1, 'the event is not looked at twice');
    });

    it('a new message wakes it; notify: true delivers exactly the message', async () => {
      verdict = { text: '{"notify":true,"message":"The nightly backup failed."}', usage: { prompt: 1200, completion: 300 } };
      const conversations = rig.conversations;
      const cid = await conversations.ensureConversation({ id: 'c_someone', channel: 'web', accountId: 'local', chatId: 'c_someone' });
      await conversations.appendMessage({ id: 'm-new-input', conversationId: cid, role: 'user', text: 'did the backup run?' });
      await rig.runsUntil(hbId, (rs) => rs.some((r) => r.outcome === 'delivered'));
      const end = Date.now() + 5000;
      while (hbSent().length === 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 25));
      assert.deepEqual(hbSent().map((m) => m.text), ['The nightly backup failed.']);
      assert.match(lastUserText(llm.requests.filter(isHeartbeat).at(-1)!), /1 new message/);
    });

    it('once the daily token cap is used up, runs are skipped before the model and recorded', async () => {
      // Beats stop here, so no scheduled tick holds the lock when a manual run comes.
      const hb = (await rig.store.get(hbId))!;
      await rig.store.update(hbId, { ...toDraft(hb), trigger: { type: 'interval', everySeconds: 3600 } });
      await rig.sync();
      await enqueueRun(rig.queue, hbId, 'manual'); // a manual run skips the "nothing new" guard, not the budget
      const first = await rig.runsUntil(hbId, (rs) => rs.filter((r) => r.trigger === 'manual' && r.outcome !== 'running').length === 1);
      assert.equal(first.find((r) => r.trigger === 'manual')!.outcome, 'delivered', 'this run still fit: it used the rest of the day');
      const calls = heartbeatCalls();
      await enqueueRun(rig.queue, hbId, 'manual');
      const runs = await rig.runsUntil(hbId, (rs) => rs.filter((r) => r.trigger === 'manual' && r.outcome !== 'running').length === 2);
      const last = runs.filter((r) => r.trigger === 'manual').at(-1)!;
      assert.equal(last.outcome, 'skipped_budget');
      assert.match(last.detail!, /daily token cap reached: \d+ of 3000 tokens used today/);
      assert.equal(heartbeatCalls(), calls, 'the model was not called');
    });
  });
});
