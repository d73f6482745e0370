import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { TextCipher } from '../conversations/cipher.js';
import { inboundJobId, type InboundMessage } from './contract.js';
import { sealInbound } from './queue-payloads.js';
import { NO_AUDIT, type AuditSink } from '../audit/log.js';
import { INBOUND_JOB_OPTIONS } from '../queues.js';

/** How long a platform message id is remembered, so a late redelivery is still dropped. */
const DEDUPE_TTL_S = 7 * 24 * 3600;

export const dedupeKey = (jobId: string) => `bulwark:dedupe:${jobId}`;
export const pendingKey = (conversationId: string) => `bulwark:pending:${conversationId}`;

/** Marks the id as seen and joins the conversation's pending set, atomically; 0 if already seen. */
const MARK = `
if not redis.call('set', KEYS[1], 'pending', 'EX', ARGV[3], 'NX') then return 0 end
redis.call('zadd', KEYS[2], 'NX', ARGV[1], ARGV[2])
return 1`;

/** Undoes MARK for a message whose job is not in the queue (no job hash), so its retry starts clean. */
const UNMARK = `
if redis.call('exists', KEYS[3]) == 1 then return 0 end
redis.call('del', KEYS[1])
redis.call('zrem', KEYS[2], ARGV[1])
return 1`;

export interface Accepted { jobId: string; duplicate: boolean }

/**
 * The single way a message enters the system. Every adapter calls `accept` after access control.
 *
 * Dedupe: a marker per platform message id lives for a week, independent of how long BullMQ keeps
 * finished jobs. The marker reads "pending" until the worker finishes the turn and sets "done"; a
 * redelivery that finds "pending" but no job (the accepting process died between the two writes)
 * is accepted again, so a message is never lost to its own dedupe marker.
 *
 * Order: the message joins its conversation's pending set (scored by accept time); the worker only
 * takes the oldest pending message of a conversation, so one conversation's turns run in order.
 */
export class Inbox {
  constructor(private readonly redis: Redis, private readonly queue: Queue, private readonly cipher: TextCipher, private readonly audit: AuditSink = NO_AUDIT) {}

  async accept(msg: InboundMessage & { conversationId: string }): Promise<Accepted> {
    const jobId = inboundJobId(msg);
    // Sealed before anything is written: a failure here leaves no dedupe marker behind.
    const payload = await sealInbound(this.cipher, msg, jobId);
    const fresh = await this.redis.eval(MARK, 2, dedupeKey(jobId), pendingKey(msg.conversationId), msg.receivedAt, jobId, DEDUPE_TTL_S);
    if (fresh === 0) {
      const state = await this.redis.get(dedupeKey(jobId));
      if (state !== 'pending' || (await this.queue.getJob(jobId))) return { jobId, duplicate: true };
      await this.redis.zadd(pendingKey(msg.conversationId), 'NX', msg.receivedAt, jobId);
    }
    try {
      await this.queue.add('turn', payload, { ...INBOUND_JOB_OPTIONS, jobId });
    } catch (err) {
      // Not accepted, so nothing of it stays: no marker, no place in the conversation's order. Unless
      // the job is there after all (the add got through before the error, or a concurrent retry's
      // did). With Redis down this fails too; a retry then finds "pending" and no job, and goes on.
      await this.redis.eval(UNMARK, 3, dedupeKey(jobId), pendingKey(msg.conversationId), this.queue.toKey(jobId), jobId).catch(() => undefined);
      throw err;
    }
    // Ids and size only: the body never goes into the audit log.
    this.audit({ kind: 'message.accepted', actor: `${msg.channel}:${msg.sender.id}`, subject: msg.conversationId, data: { channel: msg.channel, messageId: jobId, bytes: Buffer.byteLength(msg.text) } });
    return { jobId, duplicate: false };
  }
}
