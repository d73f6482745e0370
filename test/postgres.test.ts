import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { expectedModel } from '../src/db/schema-model.js';
import { listMigrations, migratePostgres } from '../src/db/migrate.js';
import { startLlmStandIn, echoHandler, type StandIn } from './support/llm-standin.js';
import { findPgBin, startPostgres, startRedis, type Service } from './support/services.js';
import { startTestHub, standInEnv, type TestHub } from './support/hub.js';

// A developer without PostgreSQL binaries gets a visible skip; CI must have them (`.ci/run` installs them).
const skip = !findPgBin() && process.env.CI !== 'true' ? 'PostgreSQL binaries not installed (node scripts/setup.mjs --tests installs them)' : false;

describe('PostgreSQL (throwaway cluster)', { skip }, () => {
  let postgres: Service;
  let redis: Service;
  let llm: StandIn;
  let t: TestHub;

  before(async () => {
    postgres = await startPostgres();
    redis = await startRedis();
    llm = await startLlmStandIn(echoHandler);
  });
  after(async () => { await t?.close(); await llm?.close(); await redis?.stop(); await postgres?.stop(); });

  it('migrations agree with prisma/schema.prisma and are applied once', async () => {
    assert.deepEqual(await migratePostgres(postgres.url), listMigrations('postgres').map((m) => m.name));
    assert.deepEqual(await migratePostgres(postgres.url), []);
    const c = new pg.Client({ connectionString: postgres.url });
    await c.connect();
    try {
      for (const model of expectedModel()) {
        const { rows } = await c.query<{ column_name: string; is_nullable: string }>('SELECT column_name, is_nullable FROM information_schema.columns WHERE table_name = $1', [model.name]);
        assert.deepEqual(rows.map((r) => r.column_name).sort(), model.columns.map((x) => x.name).sort(), `columns of ${model.name}`);
        for (const col of model.columns) assert.equal(rows.find((r) => r.column_name === col.name)!.is_nullable === 'YES', col.optional, `nullability of ${model.name}.${col.name}`);
        const idx = await c.query<{ indexdef: string }>(`SELECT indexdef FROM pg_indexes WHERE tablename = $1 AND indexname NOT LIKE '%_pkey'`, [model.name]);
        const found = idx.rows.map((r) => `${/UNIQUE/.test(r.indexdef) ? 'unique' : 'index'}:${/\((.*)\)/.exec(r.indexdef)![1]!.replace(/"/g, '').replace(/\s/g, '')}`);
        assert.deepEqual(found.sort(), model.indexes.slice().sort(), `indexes of ${model.name}`);
      }
    } finally {
      await c.end();
    }
  });

  it('runs the hub end to end on PostgreSQL', async () => {
    t = await startTestHub({ env: { REDIS_URL: redis.url, DATABASE_URL: postgres.url, ...standInEnv(llm.baseUrl) } });
    const ready = await (await fetch(`${t.url}/readyz`)).json() as { checks: Array<{ name: string; detail?: string; ok: boolean }> };
    assert.deepEqual(ready.checks.find((c) => c.name === 'database'), { name: 'database', ok: true, detail: 'postgres' });
    const a = await t.api.send('hello postgres');
    assert.equal((await t.api.waitReply(a.conversationId, a.messageId)).text, 'echo: hello postgres');
    assert.notEqual(llm.requests.at(-1)!.stream, true, 'non-streaming by default');
    const ids: string[] = [];
    for (const text of ['p1', 'p2', 'p3']) ids.push((await t.api.send(text, { conversationId: a.conversationId })).messageId);
    await t.api.waitReply(a.conversationId, ids.at(-1)!);
    const dup = await t.api.send('p3', { conversationId: a.conversationId, clientMessageId: 'pg-dup' });
    await t.api.waitReply(a.conversationId, dup.messageId);
    assert.equal((await t.api.send('p3', { conversationId: a.conversationId, clientMessageId: 'pg-dup' })).duplicate, true);
    const texts = (await t.api.messages(a.conversationId)).map((m) => m.text);
    assert.deepEqual(texts, ['hello postgres', 'echo: hello postgres', 'p1', 'echo: p1', 'p2', 'echo: p2', 'p3', 'echo: p3', 'p3', 'echo: p3']);
    // PostgreSQL's seq is 32-bit: a larger cursor is the client's error (400), not the database's (500) or a hang.
    for (const path of [`/api/conversations/${a.conversationId}/messages?after=2147483648`, `/api/conversations/${a.conversationId}/events?after=2147483648`]) {
      assert.equal((await t.api.request('GET', path, undefined, {}, AbortSignal.timeout(5_000))).status, 400, path);
    }
    assert.equal((await t.api.request('GET', `/api/conversations/${a.conversationId}/messages?after=2147483647`)).status, 200);
  });
});
