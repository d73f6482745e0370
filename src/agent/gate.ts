import { randomBytes } from 'node:crypto';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { pendingKey } from '../channels/inbox.js';

const lockKey = (conversationId: string) => `bulwark:turnlock:${conversationId}`;

/*
 * Each step is one Lua script, so it is atomic and costs one round trip.
 * ENTER: take the lock; answer 'busy', or 'ok' when this job heads the pending set, or the head.
 * HEAD: with the lock held, the same head check after a stale head was dropped.
 * LEAVE: drop this job from pending, free the lock if still ours, answer the next head.
 */
const ENTER = `
if not redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then return 'busy' end
local head = redis.call('zrange', KEYS[2], 0, 0)[1]
if head == false or head == nil or head == ARGV[3] then return 'ok' end
return head`;
const HEAD = `
local head = redis.call('zrange', KEYS[1], 0, 0)[1]
if head == false or head == nil or head == ARGV[1] then return 'ok' end
return head`;
const LEAVE = `
redis.call('zrem', KEYS[2], ARGV[2])
if redis.call('get', KEYS[1]) == ARGV[1] then redis.call('del', KEYS[1]) end
return redis.call('zrange', KEYS[2], 0, 0)[1]`;
const RELEASE = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;
const EXTEND = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end`;

/** States in which a pending message's job will still run; anything else is a leftover to drop. */
const LIVE = new Set(['waiting', 'active', 'delayed', 'prioritized', 'waiting-children']);

export interface Lease { conversationId: string; token: string; jobId: string }

/**
 * Lets one turn per conversation run at a time, in arrival order, across any number of worker
 * processes. BullMQ's own groups feature would do this but is not in the open-source edition, so
 * it is built from a Redis lock plus the conversation's pending set (see Inbox).
 */
export class ConversationGate {
  constructor(private readonly redis: Redis, private readonly queue: Queue, private readonly lockMs: number) {}

  /** Takes the conversation if this job is its oldest pending message; else says why not. */
  async tryEnter(conversationId: string, jobId: string): Promise<Lease | 'busy' | 'not-next'> {
    const token = randomBytes(12).toString('hex');
    const lock = lockKey(conversationId);
    const pending = pendingKey(conversationId);
    let head = (await this.redis.eval(ENTER, 2, lock, pending, token, String(this.lockMs), jobId)) as string;
    if (head === 'busy') return 'busy';
    while (head !== 'ok') {
      if (LIVE.has(await this.queue.getJobState(head))) {
        await this.redis.eval(RELEASE, 1, lock, token);
        return 'not-next';
      }
      // The head's job finished, failed for good, or never made it into the queue: drop it.
      await this.redis.zrem(pending, head);
      head = (await this.redis.eval(HEAD, 1, pending, jobId)) as string;
    }
    return { conversationId, token, jobId };
  }

  /** Keeps the lease alive during a long turn; false if it was lost (lock expired). */
  async extend(lease: Lease): Promise<boolean> {
    return (await this.redis.eval(EXTEND, 1, lockKey(lease.conversationId), lease.token, String(this.lockMs))) === 1;
  }

  /** Ends the turn: removes the message from pending, frees the conversation, wakes the next one. */
  async leave(lease: Lease): Promise<void> {
    const next = (await this.redis.eval(LEAVE, 2, lockKey(lease.conversationId), pendingKey(lease.conversationId), lease.token, lease.jobId)) as string | null;
    if (!next) return;
    // A waiting turn sleeps (delayed job) while the conversation is busy; wake it now.
    const job = await this.queue.getJob(next);
    if (job && (await job.isDelayed())) await job.promote().catch(() => undefined);
  }
}
