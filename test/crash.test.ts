import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLlmStandIn, lastUserText, type StandIn } from './support/llm-standin.js';
import { startRedis, freePort, type Service } from './support/services.js';
import { ApiClient, standInEnv } from './support/hub.js';
import { spawnHub, type HubProcess } from './support/process.js';

/*
 * The gateway and the worker run as separate processes (`--role gateway` / `--role worker`) over one
 * Redis and one SQLite file, as in a split deployment. Workers are killed mid-turn.
 */
describe('split roles, worker crashes and graceful shutdown', () => {
  let redis: Service;
  let llm: StandIn;
  let home: string;
  let gateway: HubProcess;
  let api: ApiClient;
  let env: Record<string, string>;
  const running: HubProcess[] = [];

  async function worker(): Promise<HubProcess> {
    const w = await spawnHub('worker', { ...env, BULWARK_PORT: String(await freePort()) });
    running.push(w);
    return w;
  }

  async function until(cond: () => boolean, ms = 20_000) {
    const end = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > end) throw new Error('timed out waiting');
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  before(async () => {
    redis = await startRedis();
    llm = await startLlmStandIn();
    home = mkdtempSync(join(tmpdir(), 'bulwark-crash-'));
    // A short job lock so a killed worker's job is noticed in seconds, not the default 30 s.
    env = { BULWARK_HOME: home, REDIS_URL: redis.url, BULWARK_WORKER_LOCK_MS: '2000', BULWARK_WORKER_SHUTDOWN_MS: '10000', BULWARK_LOG_LEVEL: 'warn', ...standInEnv(llm.baseUrl) };
    gateway = await spawnHub('gateway', { ...env, BULWARK_PORT: String(await freePort()) });
    running.push(gateway);
    api = new ApiClient(gateway.url, readFileSync(join(home, 'api-token'), 'utf8').trim());
  });

  after(async () => {
    for (const p of running) if (p.child.exitCode === null && p.child.signalCode === null) { p.child.kill('SIGKILL'); await p.exited; }
    await llm?.close();
    await redis?.stop();
    rmSync(home, { recursive: true, force: true });
  });

  it('a worker killed with SIGKILL mid-turn: the job is retried after restart and the user gets exactly one reply', async () => {
    const first = await worker();
    let calls = 0;
    llm.setHandler((req) => ({ text: `answer to ${lastUserText(req)}`, delayMs: ++calls === 1 ? 60_000 : 0 }));
    const sent = await api.send('survive a crash');
    await until(() => calls === 1); // the worker is inside the LLM call
    first.child.kill('SIGKILL');
    await first.exited;
    await worker();
    const reply = await api.waitReply(sent.conversationId, sent.messageId, 30_000);
    assert.equal(reply.text, 'answer to survive a crash');
    await new Promise((r) => setTimeout(r, 2500));
    const msgs = await api.messages(sent.conversationId);
    assert.deepEqual(msgs.map((m) => m.role), ['user', 'assistant'], 'exactly one reply');
    assert.equal(calls, 2, 'the turn ran again after the crash');
  });

  it('a worker killed after the reply was queued but before the job finished does not reply twice', async () => {
    // Send through a worker, then replay the same inbound job id: the reply id is derived from it.
    llm.setHandler((req) => ({ text: `once: ${lastUserText(req)}` }));
    const sent = await api.send('no double', { clientMessageId: 'crash-after-reply' });
    await api.waitReply(sent.conversationId, sent.messageId);
    const again = await api.send('no double', { clientMessageId: 'crash-after-reply', conversationId: sent.conversationId });
    assert.equal(again.duplicate, true);
    const msgs = await api.messages(sent.conversationId);
    assert.equal(msgs.filter((m) => m.role === 'assistant').length, 1);
  });

  it('SIGTERM lets the in-flight turn finish, delivers its reply, and exits 0', async () => {
    for (const p of running.slice(1)) if (p.child.exitCode === null) { p.child.kill('SIGKILL'); await p.exited; }
    const w = await worker();
    let calls = 0;
    llm.setHandler((req) => ({ text: `graceful ${lastUserText(req)}`, delayMs: ++calls === 1 ? 1500 : 0 }));
    const sent = await api.send('finish me');
    await until(() => calls === 1);
    w.child.kill('SIGTERM');
    assert.equal(await w.exited, 0);
    const reply = await api.waitReply(sent.conversationId, sent.messageId, 5000);
    assert.equal(reply.text, 'graceful finish me');
    assert.equal(calls, 1, 'not re-run: the turn completed before exit');
  });

  it('SIGTERM with a turn that outlasts worker.shutdown_ms: the worker exits, the turn is retried, one reply', async () => {
    for (const p of running.slice(1)) if (p.child.exitCode === null) { p.child.kill('SIGKILL'); await p.exited; }
    const w = await spawnHub('worker', { ...env, BULWARK_PORT: String(await freePort()), BULWARK_WORKER_SHUTDOWN_MS: '500' });
    running.push(w);
    let calls = 0;
    llm.setHandler((req) => ({ text: `retried ${lastUserText(req)}`, delayMs: ++calls === 1 ? 60_000 : 0 }));
    const sent = await api.send('too slow to finish');
    await until(() => calls === 1);
    w.child.kill('SIGTERM');
    assert.equal(await w.exited, 0, 'the worker does not hang on the slow turn');
    assert.deepEqual((await api.messages(sent.conversationId)).map((m) => m.role), ['user'], 'no reply from the cancelled turn');
    await worker();
    const reply = await api.waitReply(sent.conversationId, sent.messageId, 30_000);
    assert.equal(reply.text, 'retried too slow to finish');
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal((await api.messages(sent.conversationId)).filter((m) => m.role === 'assistant').length, 1);
  });

  it('messages accepted while no worker runs are answered once a worker starts', async () => {
    for (const p of running.slice(1)) if (p.child.exitCode === null) { p.child.kill('SIGTERM'); await p.exited; }
    llm.setHandler((req) => ({ text: `later: ${lastUserText(req)}` }));
    const a = await api.send('queued 1');
    const b = await api.send('queued 2', { conversationId: a.conversationId });
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await api.messages(a.conversationId)).length, 0, 'nothing processed without a worker');
    await worker();
    await api.waitReply(a.conversationId, b.messageId, 20_000);
    const msgs = await api.messages(a.conversationId);
    assert.deepEqual(msgs.map((m) => m.text), ['queued 1', 'later: queued 1', 'queued 2', 'later: queued 2']);
  });

  it('a hub whose Redis has gone away still stops on SIGTERM', { timeout: 60_000 }, async () => {
    const lost = await startRedis();
    const w = await spawnHub('worker', { ...env, REDIS_URL: lost.url, BULWARK_PORT: String(await freePort()), BULWARK_WORKER_SHUTDOWN_MS: '500' });
    running.push(w);
    await lost.stop();
    await new Promise((r) => setTimeout(r, 300));
    w.child.kill('SIGTERM');
    const code = await w.exited;
    assert.notEqual(code, null, 'the process exited by itself');
  });

  it('the gateway stops cleanly on SIGTERM', async () => {
    gateway.child.kill('SIGTERM');
    assert.equal(await gateway.exited, 0);
  });
});
