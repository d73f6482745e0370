import type { Redis } from 'ioredis';

/*
 * One run of a routine at a time, across every scheduler process. BullMQ queues the next tick the
 * moment the current one starts, so a run slower than its interval would otherwise overlap the
 * next: that tick finds the lock held and is recorded as skipped_overlap.
 *
 * The lock holds the run id. A run re-started after its process died (same job, same run id) takes
 * its own stale lock over instead of being skipped. The holder renews it while it works; a holder
 * that dies lets it expire after `ttlMs`.
 */

const key = (routineId: string) => `bulwark:routine:lock:${routineId}`;

const ACQUIRE = `
local cur = redis.call('get', KEYS[1])
if cur == false or cur == ARGV[1] then
  redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0`;
const EXTEND = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end`;
const RELEASE = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;

export interface Held { release(): Promise<void> }

export class RoutineLock {
  constructor(private readonly redis: Redis, private readonly ttlMs: number) {}

  /** Takes the routine for this run, or returns undefined when another run holds it. */
  async acquire(routineId: string, runId: string, onLost: () => void): Promise<Held | undefined> {
    const ok = await this.redis.eval(ACQUIRE, 1, key(routineId), runId, String(this.ttlMs));
    if (ok !== 1) return undefined;
    const timer = setInterval(() => {
      this.redis.eval(EXTEND, 1, key(routineId), runId, String(this.ttlMs)).then((r) => { if (r !== 1) onLost(); }, () => undefined);
    }, Math.max(500, Math.floor(this.ttlMs / 3)));
    let released = false;
    return {
      release: async () => {
        if (released) return;
        released = true;
        clearInterval(timer);
        await this.redis.eval(RELEASE, 1, key(routineId), runId);
      },
    };
  }

  /** The run holding the routine, if any (for messages and tests). */
  async holder(routineId: string): Promise<string | null> {
    return this.redis.get(key(routineId));
  }
}
