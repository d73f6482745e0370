import { createHash } from 'node:crypto';
import type { Queue, RepeatOptions } from 'bullmq';
import type { Logger } from '../logger.js';
import type { Routine } from './spec.js';
import type { RoutineStore } from './store.js';
import { TICK_JOB_OPTIONS, type Tick } from './queue.js';

/*
 * The database says which routines exist; Redis holds their BullMQ job schedulers. `syncSchedules`
 * makes Redis agree, and is safe to run from any number of processes at once:
 *  - a scheduler is only (re)written when its trigger settings changed (their hash travels in the
 *    job template), so re-syncing never moves or repeats a tick;
 *  - BullMQ creates each tick's job with an id built from the scheduler id and the tick time, so
 *    however many processes consume the queue, a tick is one job and runs once.
 * It runs when a scheduler starts, every `routines.sync_seconds`, and when the CLI changes a routine
 * while the hub runs (POST /api/routines/sync).
 */

/** A one-shot is a scheduler that fires once at its time ("every" only has to be longer than never). */
const ONCE_EVERY_MS = 365 * 24 * 3600 * 1000;

export interface ScheduleSpec { repeat: Omit<RepeatOptions, 'key'>; spec: string }

function hash(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('hex').slice(0, 16);
}

/** The BullMQ repeat options of a routine with a time trigger; undefined for webhook-only routines. */
export function scheduleOf(r: Pick<Routine, 'trigger' | 'timezone'>, now = Date.now()): ScheduleSpec | undefined {
  const t = r.trigger;
  switch (t.type) {
    case 'cron':
      // tz is always explicit: a routine cannot be stored without one (spec.ts).
      return { repeat: { pattern: t.cron, tz: r.timezone! }, spec: hash(['cron', t.cron, r.timezone]) };
    case 'interval':
      // The first run is one interval after the routine is created, not the moment it is.
      return { repeat: { every: t.everySeconds * 1000, startDate: now + t.everySeconds * 1000 }, spec: hash(['interval', t.everySeconds]) };
    case 'once':
      return { repeat: { every: ONCE_EVERY_MS, startDate: t.runAt, limit: 1 }, spec: hash(['once', t.runAt]) };
    case 'webhook':
      return undefined;
  }
}

export async function syncSchedules(store: RoutineStore, queue: Queue, logger: Logger): Promise<{ upserted: string[]; removed: string[] }> {
  const wanted = new Map<string, ScheduleSpec>();
  for (const r of await store.list()) {
    const s = r.enabled ? scheduleOf(r) : undefined;
    if (s) wanted.set(r.id, s);
  }
  const existing = new Map((await queue.getJobSchedulers(0, -1)).map((s) => [s.key, (s.template?.data as Tick | undefined)?.spec]));
  const removed: string[] = [];
  const upserted: string[] = [];
  for (const id of existing.keys()) {
    if (wanted.has(id)) continue;
    await queue.removeJobScheduler(id);
    removed.push(id);
  }
  for (const [id, s] of wanted) {
    if (existing.get(id) === s.spec) continue;
    const data: Tick = { routineId: id, trigger: 'schedule', spec: s.spec };
    await queue.upsertJobScheduler(id, s.repeat, { name: 'tick', data, opts: TICK_JOB_OPTIONS });
    upserted.push(id);
  }
  if (removed.length || upserted.length) logger.info({ upserted, removed }, 'routine schedules updated');
  return { upserted, removed };
}
