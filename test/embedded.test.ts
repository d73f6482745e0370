import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLlmStandIn, lastUserText } from './support/llm-standin.js';
import { freePort } from './support/services.js';
import { ApiClient, standInEnv } from './support/hub.js';
import { spawnHub } from './support/process.js';

const alive = (pid: number) => { try { process.kill(pid, 0); return true; } catch { return false; } };

describe('the embedded default: Redis as a child process, SQLite file', () => {
  it('survives a hub killed mid-turn: the restarted hub adopts the Redis left behind, answers once, and stops it on exit', async () => {
    const home = mkdtempSync(join(tmpdir(), 'bulwark-embedded-'));
    const llm = await startLlmStandIn();
    try {
      let calls = 0;
      llm.setHandler((req) => ({ text: `kept: ${lastUserText(req)}`, delayMs: ++calls === 1 ? 60_000 : 0 }));
      const env = { BULWARK_HOME: home, BULWARK_PORT: String(await freePort()), BULWARK_WORKER_LOCK_MS: '2000', BULWARK_LOG_LEVEL: 'warn', ...standInEnv(llm.baseUrl) };
      const first = await spawnHub('all', env);
      const api = new ApiClient(first.url, readFileSync(join(home, 'api-token'), 'utf8').trim());
      const redisPid = Number(readFileSync(join(home, 'redis', 'redis.pid'), 'utf8'));
      assert.ok(alive(redisPid), 'embedded redis runs');
      assert.equal(statSync(join(home, 'redis', 'redis.sock')).mode & 0o777, 0o700, 'socket is private');
      assert.equal(statSync(join(home, 'api-token')).mode & 0o777, 0o600);
      assert.equal(statSync(join(home, 'bulwark.db')).mode & 0o077, 0, 'database is private');

      const sent = await api.send('do not lose me');
      while (calls === 0) await new Promise((r) => setTimeout(r, 20));
      first.child.kill('SIGKILL');
      await first.exited;
      assert.ok(alive(redisPid), 'redis outlives the killed hub');

      const second = await spawnHub('all', env);
      const reply = await api.waitReply(sent.conversationId, sent.messageId, 30_000);
      assert.equal(reply.text, 'kept: do not lose me');
      assert.deepEqual((await api.messages(sent.conversationId)).map((m) => m.role), ['user', 'assistant']);
      assert.match(second.stderr(), /adopting a Redis server left running/);

      second.child.kill('SIGTERM');
      assert.equal(await second.exited, 0);
      for (let i = 0; i < 100 && alive(redisPid); i++) await new Promise((r) => setTimeout(r, 50));
      assert.equal(alive(redisPid), false, 'the adopted redis is stopped with the hub');
      assert.ok(existsSync(join(home, 'redis', 'appendonlydir')), 'redis persisted to the data directory');
    } finally {
      await llm.close();
      rmSync(home, { recursive: true, force: true });
    }
  });
});
