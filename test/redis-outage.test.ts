import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { findRedisServer } from '../src/redis/embedded.js';
import { startLlmStandIn, lastUserText } from './support/llm-standin.js';
import { freePort } from './support/services.js';
import { ApiClient, standInEnv, startTestHub } from './support/hub.js';
import { spawnHub } from './support/process.js';
import { waitFor } from './support/wait.js';

/*
 * Redis going away under a running hub: the embedded server is supervised and restarted, the hub
 * says it is not ready meanwhile, requests that need Redis answer 503 instead of hanging, and the
 * logs say so once per outage in JSON (no stack traces on stderr).
 */

const alive = (pid: number) => { try { process.kill(pid, 0); return true; } catch { return false; } };
const status = async (url: string) => (await fetch(url)).status;

/** A redis-server on a fixed port, so the test can bring "the same server" back after killing it. */
async function redisOn(port: number): Promise<ChildProcess> {
  const child = spawn(findRedisServer()!, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  await waitFor(async () => {
    const c = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    c.on('error', () => undefined);
    try { await c.connect(); return (await c.ping()) === 'PONG'; } catch { return false; } finally { c.disconnect(); }
  }, 'redis-server');
  return child;
}

async function kill9(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const done = new Promise((r) => child.once('exit', r));
  process.kill(child.pid!, 'SIGKILL');
  await done;
}

describe('Redis outages', () => {
  it('a killed embedded redis-server is restarted; meanwhile /healthz and /readyz are 503 and messages get 503 with Retry-After; nothing accepted is lost', async () => {
    const llm = await startLlmStandIn();
    let releaseFirst!: () => void;
    const firstHeld = new Promise<void>((r) => { releaseFirst = r; });
    let calls = 0;
    llm.setHandler(async (req) => {
      if (++calls === 1) await firstHeld;
      return { text: `kept: ${lastUserText(req)}` };
    });
    // The restart waits for the test, so the outage window is the test's to inspect, not a race.
    let allowRestart!: () => void;
    const restartAllowed = new Promise<void>((r) => { allowRestart = r; });
    const t = await startTestHub({ env: standInEnv(llm.baseUrl), embeddedRedis: { beforeRestart: () => restartAllowed } });
    try {
      const before = await t.api.send('accepted before the kill');
      await waitFor(() => calls > 0, 'the first turn to reach the model');
      const conversations = (await t.api.request('GET', '/api/status')).json.stored.conversations;
      const pid = Number(readFileSync(`${t.home}/redis/redis.pid`, 'utf8'));
      process.kill(pid, 'SIGKILL');
      await waitFor(async () => (await status(`${t.url}/healthz`)) === 503, '/healthz to report the outage');
      const ready = await t.api.request('GET', '/readyz');
      assert.equal(ready.status, 503);
      assert.equal(ready.json.checks.find((c: { name: string }) => c.name === 'redis').ok, false);

      const during = await t.api.request('POST', '/api/messages', { text: 'sent during the outage' });
      assert.equal(during.status, 503, JSON.stringify(during.json));
      assert.ok(Number(during.headers.get('retry-after')) > 0, 'Retry-After says when to try again');
      assert.match(during.json.error, /Redis/);

      allowRestart();
      await waitFor(async () => (await status(`${t.url}/healthz`)) === 200, '/healthz after the restart');
      const newPid = Number(readFileSync(`${t.home}/redis/redis.pid`, 'utf8'));
      assert.notEqual(newPid, pid, 'a new redis-server runs');
      assert.ok(alive(newPid));
      assert.equal((await t.api.request('GET', '/readyz')).status, 200);
      assert.equal((await t.api.request('GET', '/api/status')).json.stored.conversations, conversations, 'the refused first message left no empty conversation');

      releaseFirst();
      const kept = await t.api.waitReply(before.conversationId, before.messageId, 30_000);
      assert.equal(kept.text, 'kept: accepted before the kill');
      const after = await t.api.send('sent after the restart');
      assert.equal((await t.api.waitReply(after.conversationId, after.messageId, 30_000)).text, 'kept: sent after the restart');
      assert.deepEqual((await t.api.messages(before.conversationId)).map((m) => m.role), ['user', 'assistant'], 'answered once');
    } finally {
      allowRestart();
      releaseFirst();
      await t.close();
      await llm.close();
    }
  });

  it('start-up with REDIS_URL at a closed port fails with "cannot reach Redis" and its fix, in bounded time', { timeout: 30_000 }, async () => {
    const port = await freePort();
    await assert.rejects(startTestHub({ env: { REDIS_URL: `redis://127.0.0.1:${port}` } }), (err: Error & { fix?: string }) => {
      assert.match(err.message, new RegExp(`cannot reach Redis at redis://127\\.0\\.0\\.1:${port}/?: .*ECONNREFUSED`));
      assert.match(err.fix ?? '', /check REDIS_URL/);
      return true;
    });
  });

  it('an outage of an external Redis: one JSON log line per outage and no stack traces, 503 meanwhile, and SIGTERM during an outage stops the hub promptly', { timeout: 120_000 }, async () => {
    const llm = await startLlmStandIn();
    const port = await freePort();
    let redis = await redisOn(port);
    const home = mkdtempSync(join(tmpdir(), 'bulwark-outage-'));
    const hub = await spawnHub('all', { BULWARK_HOME: home, BULWARK_PORT: String(await freePort()), REDIS_URL: `redis://127.0.0.1:${port}`, BULWARK_LOG_LEVEL: 'info', ...standInEnv(llm.baseUrl) });
    try {
      const api = new ApiClient(hub.url, readFileSync(join(home, 'api-token'), 'utf8').trim());
      await api.send('warm up');

      await kill9(redis);
      await waitFor(async () => (await status(`${hub.url}/healthz`)) === 503, '/healthz to report the outage');
      const during = await api.request('POST', '/api/messages', { text: 'during the outage' });
      assert.equal(during.status, 503);
      assert.ok(Number(during.headers.get('retry-after')) > 0);
      // Let every connection (queues, workers, subscribers) fail and retry for a while.
      await new Promise((r) => setTimeout(r, 3000));

      redis = await redisOn(port);
      await waitFor(async () => (await status(`${hub.url}/healthz`)) === 200, '/healthz after Redis is back');
      const back = await api.send('after the outage');
      assert.match((await api.waitReply(back.conversationId, back.messageId, 30_000)).text, /after the outage/);

      const lines = hub.stderr().split('\n').filter((l) => l.trim() !== '');
      for (const l of lines) assert.doesNotThrow(() => JSON.parse(l), `stderr line is not JSON: ${l}`);
      for (const l of [...lines, ...hub.stdout().split('\n')]) assert.doesNotMatch(l, /^\s+at /, 'no stack traces');
      const logs = lines.map((l) => JSON.parse(l) as { msg: string; level: number });
      assert.equal(logs.filter((l) => /redis is unreachable/i.test(l.msg)).length, 1, `one line for the outage:\n${lines.join('\n')}`);
      assert.equal(logs.filter((l) => /redis is reachable again/i.test(l.msg)).length, 1, 'one line when it ends');

      await kill9(redis);
      await waitFor(async () => (await status(`${hub.url}/healthz`)) === 503, 'the second outage');
      hub.child.kill('SIGTERM');
      const code = await Promise.race([hub.exited, new Promise<string>((r) => setTimeout(() => r('still running'), 10_000))]);
      assert.equal(code, 0, 'the hub stops on SIGTERM during an outage well before its shutdown bounds');
    } finally {
      if (alive(hub.pid)) hub.child.kill('SIGKILL');
      await kill9(redis);
      await llm.close();
      rmSync(home, { recursive: true, force: true });
    }
  });
});
