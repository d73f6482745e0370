import { hostname } from 'node:os';
import { Counter } from 'prom-client';
import { UnrecoverableError, Worker, type Job, type Queue } from 'bullmq';
import { lockedWorkerOptions, watchRedisErrors, type RedisTarget } from '../queues.js';
import { RoutineLock } from './lock.js';
import { ROUTINES, runIdOf, scheduledAtOf, tickSchema } from './queue.js';
import { executeRun, type RunDeps } from './run.js';
import type { RunEnd } from './store.js';

/*
 * The scheduler role's consumer of the "routines" queue: one job is one run. Order of business:
 * record the run (its id comes from the job, so a re-run after a crash finds its own record), take
 * the routine's lock (a run still going → skipped_overlap), run, record the outcome.
 */

export interface RoutineWorkerDeps extends RunDeps {
  redisTarget: RedisTarget;
  queue: Queue;
  concurrency: number;
  lockMs: number;
}

export function startRoutineWorker(deps: RoutineWorkerDeps): Worker {
  const { store, logger } = deps;
  const lock = new RoutineLock(deps.redis, deps.lockMs);
  const me = `${hostname()}:${process.pid}`;
  const runs = new Counter({ name: 'bulwark_routine_runs_total', help: 'Routine runs, by outcome', labelNames: ['outcome'], registers: [deps.metrics.registry] });

  async function runJob(job: Job, _token?: string, signal?: AbortSignal): Promise<void> {
    const parsed = tickSchema.safeParse(job.data);
    if (!parsed.success) throw new UnrecoverableError(`invalid routine job payload: ${parsed.error.issues[0]?.message}`);
    const tick = parsed.data;
    const routine = await store.get(tick.routineId);
    if (!routine) {
      // Deleted while a tick was pending: make sure its scheduler goes too.
      if (tick.trigger === 'schedule') await deps.queue.removeJobScheduler(tick.routineId);
      return;
    }
    if (!routine.enabled && tick.trigger !== 'manual') return;
    const runId = runIdOf(job.id!);
    const scheduledAt = tick.trigger === 'schedule' ? scheduledAtOf(job.id!) : undefined;
    const { run, existing } = await store.startRun({ id: runId, routineId: routine.id, trigger: tick.trigger, scheduledAt, worker: me });
    if (existing && run.outcome !== 'running') return;
    // A one-shot has fired: it disables itself, and the next sync removes its scheduler.
    if (routine.trigger.type === 'once' && tick.trigger === 'schedule') await store.setEnabled(routine.id, false);

    const finish = async (end: RunEnd) => {
      await store.finishRun(runId, end);
      runs.inc({ outcome: end.outcome });
      logger.info({ routine: routine.name, runId, outcome: end.outcome, detail: end.detail, tokens: (end.tokensIn ?? 0) + (end.tokensOut ?? 0) }, 'routine run');
    };
    const held = await lock.acquire(routine.id, runId, () => logger.warn({ routine: routine.name, runId }, 'lost the routine lock during a run'));
    if (!held) {
      await finish({ outcome: 'skipped_overlap', detail: `the previous run (${await lock.holder(routine.id) ?? 'just finished'}) was still going` });
      return;
    }
    try {
      await store.closeAbandoned(routine.id, runId);
      await finish(await executeRun(deps, routine, { runId, tick, scheduledAt, signal: signal ?? new AbortController().signal }));
    } catch (err) {
      await finish({ outcome: 'failed', detail: signal?.aborted ? 'cancelled: the scheduler shut down during the run' : (err as Error).message }).catch(() => undefined);
      if (!signal?.aborted) logger.error({ routine: routine.name, runId, err: (err as Error).message }, 'routine run failed');
    } finally {
      await held.release().catch(() => undefined);
    }
  }

  const worker = new Worker(ROUTINES, runJob, lockedWorkerOptions(deps.redisTarget, { concurrency: deps.concurrency, lockMs: deps.lockMs, maxStalledCount: 1 }));
  watchRedisErrors(worker, 'routines worker', logger);
  return worker;
}
