import { randomBytes } from 'node:crypto';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { pendingKey } from '../channels/inbox.js';

const lockKey = (conversationId: string) => `bulwark:turnlock:${conversationId}`;

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
    const ok = await this.redis.set(lockKey(conversationId), token, 'PX', this.lockMs, 'NX');
    if (ok === null) return 'busy';
    for (;;) {
      const [head] = await this.redis.zrange(pendingKey(conversationId), 0, 0);
      if (head === undefined || head === jobId) return { conversationId, token, jobId };
      const state = await this.queue.getJobState(head);
      if (LIVE.has(state)) {
        await this.redis.eval(RELEASE, 1, lockKey(conversationId), token);
        return 'not-next';
      }
      // The head's job finished, failed for good, or never made it into the queue: drop it.
      await this.redis.zrem(pendingKey(conversationId), head);
    }
  }

  /** Keeps the lease alive during a long turn; false if it was lost (lock expired). */
  async extend(lease: Lease): Promise<boolean> {
    return (await this.redis.eval(EXTEND, 1, lockKey(lease.conversationId), lease.token, String(this.lockMs))) === 1;
  }

  /** Ends the turn: removes the message from pending, frees the conversation, wakes the next one. */
  async leave(lease: Lease): Promise<void> {
    await this.redis.zrem(pendingKey(lease.conversationId), lease.jobId);
    await this.redis.eval(RELEASE, 1, lockKey(lease.conversationId), lease.token);
    const [next] = await this.redis.zrange(pendingKey(lease.conversationId), 0, 0);
    if (next === undefined) return;
    const job = await this.queue.getJob(next);
    // Waiting jobs are delayed while the conversation is busy; wake the next one now instead of
    // letting it sleep out its delay.
    await job?.promote().catch(() => undefined);
  }
}
