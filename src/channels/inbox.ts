import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { TextCipher } from '../conversations/cipher.js';
import { inboundJobId, type InboundMessage } from './contract.js';
import { sealInbound } from './queue-payloads.js';
import { NO_DURABLE_AUDIT, type DurableAuditSink } from '../audit/log.js';
import { INBOUND_JOB_OPTIONS } from '../queues.js';
import { RedisUnavailableError } from '../redis/outages.js';

/** How long a platform message id is remembered, so a late redelivery is still dropped. */
const DEDUPE_TTL_S = 7 * 24 * 3600;

export const dedupeKey = (jobId: string) => `bulwark:dedupe:${jobId}`;
export const pendingKey = (conversationId: string) => `bulwark:pending:${conversationId}`;
/** The conversation's arrival counter: the pending set's scores. */
const arrivalKey = (conversationId: string) => `bulwark:arrival:${conversationId}`;
const ARRIVAL_TTL_S = 30 * 24 * 3600;

/*
 * Joins the conversation's pending set at the next arrival number (never below its last member's
 * score, so a counter that expired, or sets scored by accept time in earlier versions, go on in
 * order). Arrival numbers, not clocks: two messages in one millisecond, or accepted by gateways
 * whose clocks differ, keep the order in which they were taken.
 */
const JOIN = `
local function join(pending, counter, id, ttl)
  if redis.call('zscore', pending, id) then return end
  local n = redis.call('incr', counter)
  local top = redis.call('zrange', pending, -1, -1, 'WITHSCORES')[2]
  if top and tonumber(top) >= n then
    n = tonumber(top) + 1
    redis.call('set', counter, string.format('%d', n))
  end
  redis.call('expire', counter, ttl)
  redis.call('zadd', pending, n, id)
end`;

/** Marks the id as seen and joins the conversation's pending set, atomically; 0 if already seen. */
const MARK = `${JOIN}
if not redis.call('set', KEYS[1], 'pending', 'EX', ARGV[2], 'NX') then return 0 end
join(KEYS[2], KEYS[3], ARGV[1], ARGV[3])
return 1`;
/** A redelivery of a message whose first accept died half-way: join again if it is not in the set. */
const REJOIN = `${JOIN}
join(KEYS[1], KEYS[2], ARGV[1], ARGV[2])
return 1`;

/** A web or CLI client's first message (its clientMessageId) → the conversation it started. */
const firstKey = (channel: string, clientId: string) => `bulwark:first:${channel}:${clientId}`;
const FIRST = `
local v = redis.call('get', KEYS[1])
if v then return v end
redis.call('set', KEYS[1], ARGV[1], 'EX', ARGV[2])
return ARGV[1]`;

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
 * Order: the message joins its conversation's pending set (scored by arrival number); the worker only
 * takes the oldest pending message of a conversation, so one conversation's turns run in order.
 */
export class Inbox {
  constructor(private readonly redis: Redis, private readonly queue: Queue, private readonly cipher: TextCipher, private readonly audit: DurableAuditSink = NO_DURABLE_AUDIT) {}

  /**
   * The conversation a client's first message (no conversationId yet) belongs to: the one its first
   * try started, or `fresh` for a message never seen. Remembered as long as the dedupe marker.
   */
  async firstConversation(channel: string, clientId: string, fresh: string): Promise<string> {
    return (await this.redis.eval(FIRST, 1, firstKey(channel, clientId), fresh, DEDUPE_TTL_S)) as string;
  }

  async accept(msg: InboundMessage & { conversationId: string }): Promise<Accepted> {
    // A fail-fast connection that is not ready would refuse the writes below: refuse before the seal,
    // which creates the conversation's row and data key, so a message not taken leaves no empty
    // conversation behind (on every channel). A client with an offline queue just waits, as before.
    if (this.redis.options.enableOfflineQueue === false && this.redis.status !== 'ready') throw new RedisUnavailableError(`the command connection is ${this.redis.status}`);
    const jobId = inboundJobId(msg);
    // Sealed before anything is written: a failure here leaves no dedupe marker behind.
    const payload = await sealInbound(this.cipher, msg, jobId);
    const conv = msg.conversationId;
    const fresh = await this.redis.eval(MARK, 3, dedupeKey(jobId), pendingKey(conv), arrivalKey(conv), jobId, DEDUPE_TTL_S, ARRIVAL_TTL_S);
    if (fresh === 0) {
      const state = await this.redis.get(dedupeKey(jobId));
      if (state !== 'pending' || (await this.queue.getJob(jobId))) return { jobId, duplicate: true };
      await this.redis.eval(REJOIN, 2, pendingKey(conv), arrivalKey(conv), jobId, ARRIVAL_TTL_S);
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
    // Ids and size only: the body never goes into the audit log. Committed before the caller
    // acknowledges the message; a failed write (logged and counted) does not refuse a message
    // that is already queued, and `bulwark audit verify` names the stored message it lacks.
    await this.audit({ kind: 'message.accepted', actor: `${msg.channel}:${msg.sender.id}`, subject: msg.conversationId, data: { channel: msg.channel, messageId: jobId, bytes: Buffer.byteLength(msg.text) } });
    return { jobId, duplicate: false };
  }
}
