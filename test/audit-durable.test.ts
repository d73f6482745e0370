import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { startLlmStandIn, type StandIn } from './support/llm-standin.js';
import { startRedis, freePort, type Service } from './support/services.js';
import { ApiClient, standInEnv } from './support/hub.js';
import { runCli, spawnHub, type HubProcess } from './support/process.js';

/*
 * The operator's view of the audit log after a crash: a hub acknowledges messages (202), is killed
 * with SIGKILL at once, and `bulwark audit` then reads the database it left behind.
 */
describe('audit entries are durable before the action is acknowledged', () => {
  let redis: Service;
  let llm: StandIn;
  let home: string;
  let hub: HubProcess | undefined;
  let env: Record<string, string>;

  before(async () => {
    redis = await startRedis();
    llm = await startLlmStandIn();
    home = mkdtempSync(join(tmpdir(), 'bulwark-audit-crash-'));
    env = { BULWARK_HOME: home, REDIS_URL: redis.url, BULWARK_LOG_LEVEL: 'warn', ...standInEnv(llm.baseUrl) };
  });
  after(async () => {
    if (hub && hub.child.exitCode === null && hub.child.signalCode === null) { hub.child.kill('SIGKILL'); await hub.exited; }
    await llm?.close();
    await redis?.stop();
    rmSync(home, { recursive: true, force: true });
  });

  it('after kill -9 right behind the last 202, every acknowledged message has its message.accepted entry and verify is OK', { timeout: 180_000 }, async () => {
    // Each message starts its own conversation, so its entry is found by subject whatever the job id looks like.
    const acknowledged: string[] = [];
    // Whether the last entries are still in memory at the kill is a race; three crashes in a row make losing one near certain without the durable path.
    for (let round = 0; round < 3; round++) {
      hub = await spawnHub('all', { ...env, BULWARK_PORT: String(await freePort()) });
      const api = new ApiClient(hub.url, readFileSync(join(home, 'api-token'), 'utf8').trim());
      for (let wave = 0; wave < 3; wave++) {
        await Promise.all(Array.from({ length: 40 }, async (_, i) => { acknowledged.push((await api.send(`crash ${round}.${wave}.${i}`)).conversationId); }));
      }
      // The owner's login link is acknowledged the same way.
      assert.equal((await api.request('POST', '/api/login-links')).status, 200);
      hub.child.kill('SIGKILL');
      await hub.exited;
    }
    const total = acknowledged.length;
    assert.equal(total, 360);

    const found = await runCli(['audit', 'search', '--kind', 'message.accepted', '--limit', '10000', '--json'], env);
    assert.equal(found.code, 0, found.stderr);
    const recorded = new Set(found.stdout.trim().split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { subject: string }).subject));
    const missing = acknowledged.filter((c) => !recorded.has(c));
    assert.deepEqual(missing, [], `${missing.length} of ${total} acknowledged messages have no message.accepted entry`);

    const links = await runCli(['audit', 'search', '--kind', 'web.login_link', '--json'], env);
    assert.equal(links.stdout.trim().split('\n').filter(Boolean).length, 3, 'one web.login_link entry per crash');

    const verify = await runCli(['audit', 'verify'], env);
    assert.equal(verify.code, 0, verify.stdout + verify.stderr);
    assert.match(verify.stdout, /audit log OK/);
  });

  it('a user message stored without its message.accepted entry makes verify fail and name it', async () => {
    // What a hub that lost an entry (or someone adding a message behind its back) leaves behind.
    const raw = new Database(join(home, 'bulwark.db'));
    try {
      raw.prepare(`INSERT INTO Message (id, conversationId, role, body, sealed, createdAt)
        SELECT 'in/web/local/m_forged', id, 'user', 'not from the hub', 0, createdAt FROM Conversation ORDER BY createdAt DESC LIMIT 1`).run();
    } finally {
      raw.close();
    }
    const verify = await runCli(['audit', 'verify'], env);
    assert.equal(verify.code, 1, verify.stdout + verify.stderr);
    assert.match(verify.stdout, /message in\/web\/local\/m_forged .*no message\.accepted entry/);
    const json = JSON.parse((await runCli(['audit', 'verify', '--json'], env)).stdout) as { ok: boolean; problems: Array<{ kind: string; message: string }> };
    assert.equal(json.ok, false);
    assert.deepEqual(json.problems.map((p) => p.kind), ['unrecorded']);
  });
});
