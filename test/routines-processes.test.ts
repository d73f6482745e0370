import { openVaultOn, webhookKeySealer } from '../src/vault/index.js';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Queue } from 'bullmq';
import { openDb, resolveDbTarget, type Db } from '../src/db/client.js';
import { silentLogger } from '../src/logger.js';
import { createQueue } from '../src/queues.js';
import { ROUTINES } from '../src/routines/queue.js';
import { draftSchema } from '../src/routines/spec.js';
import { RoutineStore, type RunRecord } from '../src/routines/store.js';
import { syncSchedules } from '../src/routines/sync.js';
import { startLlmStandIn, type StandIn } from './support/llm-standin.js';
import { freePort, startRedis, type Service } from './support/services.js';
import { standInEnv } from './support/hub.js';
import { spawnHub, type HubProcess } from './support/process.js';

/*
 * `bulwark start --role scheduler` as real processes over one Redis and one SQLite file: two of them
 * run each tick once, and killing them all mid-schedule loses neither the schedule nor its grid.
 */
describe('routines across scheduler processes', () => {
  let redis: Service;
  let llm: StandIn;
  let home: string;
  let env: Record<string, string>;
  let db: Db;
  let store: RoutineStore;
  let queue: Queue;
  const running: HubProcess[] = [];

  const scheduler = async () => {
    const p = await spawnHub('scheduler', { ...env, BULWARK_PORT: String(await freePort()) });
    running.push(p);
    return p;
  };
  const add = async (name: string) => {
    const { routine } = await store.create(draftSchema.parse({ name, target: { channel: 'standin', accountId: 'a', chatId: name }, trigger: { type: 'interval', everySeconds: 1 }, instructions: `pulse ${name}`, maxTokensPerRun: 10_000 }), { owner: 'owner' });
    await syncSchedules(store, queue, silentLogger());
    return routine.id;
  };
  const runsUntil = async (id: string, done: (runs: RunRecord[]) => boolean, ms = 30_000) => {
    const end = Date.now() + ms;
    for (;;) {
      const runs = (await store.history(id, 1000)).reverse();
      if (done(runs)) return runs;
      if (Date.now() > end) throw new Error(`timed out: ${JSON.stringify(runs.map((r) => [r.outcome, r.detail]))}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const requestsFor = (name: string) => llm.requests.filter((r) => JSON.stringify(r.messages).includes(`pulse ${name}`)).length;

  before(async () => {
    redis = await startRedis();
    llm = await startLlmStandIn();
    home = mkdtempSync(join(tmpdir(), 'bulwark-sched-'));
    env = { BULWARK_HOME: home, REDIS_URL: redis.url, BULWARK_WORKER_LOCK_MS: '2000', BULWARK_LOG_LEVEL: 'warn', ...standInEnv(llm.baseUrl) };
    db = await openDb(resolveDbTarget(undefined, home));
    store = new RoutineStore(db, webhookKeySealer((await openVaultOn(db, home, { create: true, env: {} })).vault));
    queue = createQueue(ROUTINES, { url: redis.url });
  });

  after(async () => {
    for (const p of running) if (p.child.exitCode === null && p.child.signalCode === null) { p.child.kill('SIGKILL'); await p.exited; }
    await queue?.close();
    await db?.$disconnect();
    await llm?.close();
    await redis?.stop();
    rmSync(home, { recursive: true, force: true });
  });

  it('two scheduler processes: every tick runs exactly once', async () => {
    await Promise.all([scheduler(), scheduler()]);
    const id = await add('pulse');
    const runs = await runsUntil(id, (rs) => rs.filter((r) => r.outcome === 'delivered').length >= 5);
    assert.ok((await queue.getWorkers()).length >= 2, 'both processes consume the routines queue');
    const ticks = runs.map((r) => r.scheduledAt!.getTime());
    assert.equal(new Set(ticks).size, ticks.length, 'no tick ran twice');
    for (const t of ticks) assert.equal((t - ticks[0]!) % 1000, 0, 'ticks on the one-second grid');
    assert.deepEqual(new Set(runs.map((r) => r.outcome)), new Set(['delivered', ...(runs.at(-1)!.outcome === 'running' ? ['running'] : [])]));
    await store.setEnabled(id, false);
    await syncSchedules(store, queue, silentLogger());
    const settled = await runsUntil(id, (rs) => rs.every((r) => r.outcome !== 'running'));
    assert.equal(requestsFor('pulse'), settled.length, 'one model call per tick');
  });

  it('all schedulers killed mid-schedule: a new one keeps the schedule and its grid, missed ticks collapse into one catch-up', async () => {
    const id = await add('steady');
    await runsUntil(id, (rs) => rs.filter((r) => r.outcome === 'delivered').length >= 2);
    for (const p of running) { p.child.kill('SIGKILL'); await p.exited; }
    const downFrom = Date.now();
    await new Promise((r) => setTimeout(r, 2500));
    const downTo = Date.now();
    const scheduled = await queue.getJobScheduler(id);
    assert.equal(scheduled?.every, 1000, 'the schedule lives in Redis, not in the dead processes');
    await scheduler();
    const runs = await runsUntil(id, (rs) => rs.filter((r) => r.startedAt.getTime() > downTo && r.outcome === 'delivered').length >= 2);
    const ticks = runs.map((r) => r.scheduledAt!.getTime());
    assert.equal(new Set(ticks).size, ticks.length, 'no tick ran twice across the restart');
    for (const t of ticks) assert.equal((t - ticks[0]!) % 1000, 0, 'the restarted schedule keeps its grid');
    // Two or three ticks fell due while no scheduler ran; BullMQ keeps one pending job per scheduler,
    // so they come back as a single late run (missed-run policy catch_up), not as a burst.
    const duringDowntime = runs.filter((r) => r.scheduledAt!.getTime() > downFrom && r.scheduledAt!.getTime() < downTo);
    assert.ok(duringDowntime.length <= 1, `at most one catch-up run for the ticks missed while down (got ${duringDowntime.length})`);
    // A tick that finds the routine's lock held by an earlier tick's run is skipped as an overlap
    // (src/routines/lock.ts): the lock of a run the killed processes held lasts until it expires,
    // and the first run of the fresh process (the catch-up, cold start) may outlast the 1 s interval.
    // That is the overlap policy, not a tick run twice; anything else must be delivered.
    const heldByEarlier = (r: RunRecord) => {
      const holder = /\(repeat\/[^/]+\/(\d+)\)/.exec(r.detail ?? '');
      return r.outcome === 'skipped_overlap' && holder !== null && Number(holder[1]) < r.scheduledAt!.getTime();
    };
    assert.ok(runs.every((r) => r.outcome === 'delivered' || r.outcome === 'running' || heldByEarlier(r)), JSON.stringify(runs.map((r) => [r.outcome, r.detail])));
    await store.setEnabled(id, false);
    await syncSchedules(store, queue, silentLogger());
  });
});
