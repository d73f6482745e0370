import { randomBytes } from 'node:crypto';
import type { JobsOptions, Queue } from 'bullmq';
import { z } from 'zod';

/*
 * The "routines" queue: one job per run. Scheduled runs come from BullMQ job schedulers (one per
 * routine, id = routine id; BullMQ makes exactly one job per tick, whatever the number of scheduler
 * processes). Manual and webhook runs are plain jobs added here.
 */

export const ROUTINES = 'routines';

export const tickSchema = z.strictObject({
  routineId: z.string().min(1).max(128),
  trigger: z.enum(['schedule', 'manual', 'webhook']),
  /** Hash of the trigger settings the scheduler was made from (schedule ticks only); see sync.ts. */
  spec: z.string().optional(),
  /** Webhook body, as received (already size-capped); handed to the model as untrusted data. */
  payload: z.string().max(1024 * 1024).optional(),
});
export type Tick = z.infer<typeof tickSchema>;

/*
 * One attempt: a failed run is recorded and the next tick tries again, so a broken model is not
 * hammered. A run whose process died is still re-run once (BullMQ's stalled-job check).
 */
export const TICK_JOB_OPTIONS: JobsOptions = {
  attempts: 1,
  removeOnComplete: { age: 24 * 3600, count: 2000 },
  removeOnFail: { age: 7 * 24 * 3600, count: 2000 },
};

/** Queues a run now (CLI, chat, webhook). Returns the run id, which `routine history` shows. */
export async function enqueueRun(queue: Queue, routineId: string, trigger: 'manual' | 'webhook', payload?: string): Promise<string> {
  const jobId = `${trigger}/${routineId}/${Date.now()}-${randomBytes(4).toString('hex')}`;
  const data: Tick = { routineId, trigger, ...(payload !== undefined ? { payload } : {}) };
  await queue.add(trigger, data, { ...TICK_JOB_OPTIONS, jobId });
  return jobId;
}

/** Scheduler job ids are "repeat:<schedulerId>:<millis>": the millis are when the tick was due. */
export function scheduledAtOf(jobId: string): number | undefined {
  const m = /^repeat:.+:(\d+)$/.exec(jobId);
  return m ? Number(m[1]) : undefined;
}

/** A run's id is its job's id with ':' (a Redis key separator) written as '/'. */
export function runIdOf(jobId: string): string {
  return jobId.replaceAll(':', '/');
}
