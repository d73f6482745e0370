import { randomBytes } from 'node:crypto';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { pendingKey } from '../channels/inbox.js';

const lockKey = (conversationId: string) => `bulwark:turnlock:${conversationId}`;

/*
 * Each step is one Lua script, so it is atomic and costs one round trip.
 * ENTER: take the lock when this job heads the pending set (or is not in it: nothing orders it).
 *   Answers {'ok'}, {'busy', ttl of the lock}, or {'head', id} without touching the lock (a turn
 *   that is not next must not hold the conversation even for a moment: the head could find it busy).
 */
const ENTER = `
local head = redis.call('zrange', KEYS[2], 0, 0)[1]
if head and head ~= ARGV[3] and redis.call('zscore', KEYS[2], ARGV[3]) then return {'head', head} end
if not redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then return {'busy', redis.call('pttl', KEYS[1])} end
return {'ok'}`;
const LEAVE = `
if ARGV[3] ~= 'keep' then redis.call('zrem', KEYS[2], ARGV[2]) end
if redis.call('get', KEYS[1]) == ARGV[1] then redis.call('del', KEYS[1]) end
return 1`;
const FREE_HEAD = `
if redis.call('exists', KEYS[1]) == 1 then return false end
return redis.call('zrange', KEYS[2], 0, 0)[1]`;
const EXTEND = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end`;

/** States in which a pending message's job will still run; anything else is a leftover to drop. */
const LIVE = new Set(['waiting', 'active', 'delayed', 'prioritized', 'waiting-children']);
/** States of a job that will never run again: safe to drop from pending even while others race. */
const DONE = new Set(['completed', 'failed']);

export interface Lease { conversationId: string; token: string; jobId: string }

/** Why a turn cannot start now, and when it should look again if nobody wakes it first. */
export interface Wait { reason: 'busy' | 'not-next'; retryInMs: number }

/**
 * Lets one turn per conversation run at a time, in arrival order, across any number of worker
 * processes. BullMQ's own groups feature would do this but is not in the open-source edition, so
 * it is built from a Redis lock plus the conversation's pending set (see Inbox).
 *
 * A turn that cannot start is parked (a delayed job, holding no worker slot) and is woken by
 * whoever frees the conversation: the turn before it, on leaving. The park's own delay is only a
 * safety net for a worker that died, so a backlog drains at the pace of the turns, not of polling.
 */
export class ConversationGate {
  constructor(private readonly redis: Redis, private readonly queue: Queue, private readonly lockMs: number, private readonly safetyMs = Math.max(2 * lockMs, 10_000)) {}

  /** Takes the conversation if this job is its oldest pending message; else says why not. */
  async tryEnter(conversationId: string, jobId: string): Promise<Lease | Wait> {
    const token = randomBytes(12).toString('hex');
    const lock = lockKey(conversationId);
    const pending = pendingKey(conversationId);
    for (;;) {
      const r = (await this.redis.eval(ENTER, 2, lock, pending, token, String(this.lockMs), jobId)) as [string, (string | number)?];
      if (r[0] === 'ok') return { conversationId, token, jobId };
      if (r[0] === 'busy') {
        // Next in line: if the holder died, nobody wakes us, so look again when its lock expires.
        const ttl = Number(r[1]);
        return { reason: 'busy', retryInMs: ttl >= 0 ? Math.min(this.safetyMs, ttl + jitter(50)) : this.safety() };
      }
      const head = String(r[1]);
      const state = await this.queue.getJobState(head);
      if (LIVE.has(state)) {
        // A parked head of a free conversation has nobody else to wake it.
        if (state === 'delayed') await this.wakeHead(conversationId);
        return { reason: 'not-next', retryInMs: this.safety() };
      }
      // The head's job finished, failed for good, or never made it into the queue: drop it.
      await this.redis.zrem(pending, head);
    }
  }

  /** Keeps the lease alive during a long turn; false if it was lost (lock expired). */
  async extend(lease: Lease): Promise<boolean> {
    return (await this.redis.eval(EXTEND, 1, lockKey(lease.conversationId), lease.token, String(this.lockMs))) === 1;
  }

  /**
   * Ends the turn and wakes the next one. `keepPlace`: the turn failed and will be retried, so it
   * stays first in line (later messages wait for it, as order requires) and nobody is woken.
   */
  async leave(lease: Lease, opts: { keepPlace?: boolean } = {}): Promise<void> {
    await this.redis.eval(LEAVE, 2, lockKey(lease.conversationId), pendingKey(lease.conversationId), lease.token, lease.jobId, opts.keepPlace ? 'keep' : 'drop');
    if (!opts.keepPlace) await this.wakeHead(lease.conversationId);
  }

  /**
   * Called after a turn was parked. Closes the race with `leave`: if the conversation was freed
   * while this job was still on its way to the delayed set, `leave` found it active and did not
   * promote it, so it (or whoever heads the line) is woken here.
   */
  async parked(conversationId: string): Promise<void> {
    await this.wakeHead(conversationId);
  }

  /** Promotes the head of a free conversation if it is parked; drops heads that will never run. */
  private async wakeHead(conversationId: string): Promise<void> {
    for (let i = 0; i < 16; i++) {
      const head = (await this.redis.eval(FREE_HEAD, 2, lockKey(conversationId), pendingKey(conversationId))) as string | null;
      if (!head) return;
      const state = await this.queue.getJobState(head);
      if (state === 'delayed') return this.promote(head);
      // Waiting or active: it will take the conversation itself. Unknown: it may be between the
      // inbox's two writes; tryEnter of a later turn drops it if it never appears.
      if (!DONE.has(state)) return;
      await this.redis.zrem(pendingKey(conversationId), head);
    }
  }

  private async promote(jobId: string): Promise<void> {
    const job = await this.queue.getJob(jobId);
    // Someone else may have promoted it a moment ago: that is the same outcome.
    await job?.promote().catch(() => undefined);
  }

  private safety(): number {
    return this.safetyMs + jitter(Math.floor(this.safetyMs / 5));
  }
}

const jitter = (max: number) => Math.floor(Math.random() * max);
