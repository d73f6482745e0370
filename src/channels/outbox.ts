import { DelayedError, UnrecoverableError, Worker } from 'bullmq';
import type { TextCipher } from '../conversations/cipher.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { OUTBOUND, OUTBOUND_JOB_OPTIONS, PREFIX, bullConnection, outboundQueueName, watchRedisErrors, type OutboundQueues, type RedisTarget } from '../queues.js';
import { CHANNEL_NAME, type ChannelAdapter, type OutboundMessage } from './contract.js';
import { openOutbound } from './queue-payloads.js';
import type { DurableAuditSink } from '../audit/log.js';
import { PermanentSendError, RetryAfter } from './delivery.js';

export interface OutboxOptions { redisTarget: RedisTarget; adapters: Map<string, ChannelAdapter>; outbound: OutboundQueues; cipher: TextCipher; metrics: Metrics; logger: Logger; concurrency?: number; audit?: DurableAuditSink }

/**
 * Consumes the outbound queue of each channel this gateway runs and hands each reply to that
 * channel's adapter (queues.ts: one queue per channel, so a gateway never takes another gateway's
 * replies). A failed send is retried with backoff by BullMQ. Also moves jobs left in the single
 * queue of earlier versions to their channel's queue.
 */
export function startOutbox(opts: OutboxOptions): Worker[] {
  return [...[...opts.adapters.keys()].map((channel) => channelOutbox(opts, channel)), legacyDrain(opts)];
}

function channelOutbox(opts: OutboxOptions, channel: string): Worker {
  const { adapters, metrics, logger } = opts;
  const worker = new Worker(outboundQueueName(channel), async (job, token) => {
    let msg: OutboundMessage;
    try {
      msg = await openOutbound(opts.cipher, job.data);
    } catch (err) {
      metrics.errors.inc({ where: 'outbound_payload' });
      const issue = (err as { issues?: Array<{ message: string }> }).issues?.[0]?.message;
      throw new UnrecoverableError(`invalid outbound job payload: ${issue ?? (err as Error).message}`);
    }
    const adapter = adapters.get(msg.channel);
    if (!adapter || msg.channel !== channel) throw new UnrecoverableError(`a "${msg.channel}" reply in the queue of "${channel}"`);
    try {
      await adapter.send(msg);
    } catch (err) {
      // The platform's own delay, not our backoff, and without spending one of the job's attempts.
      if (err instanceof RetryAfter) {
        logger.info({ jobId: job.id, channel: msg.channel, retryInMs: err.ms }, 'platform rate limit: delivery postponed');
        await job.moveToDelayed(Date.now() + err.ms, token);
        throw new DelayedError();
      }
      if (err instanceof PermanentSendError) throw new UnrecoverableError(err.message);
      throw err;
    }
    metrics.messagesOut.inc({ channel: msg.channel });
    if (msg.inboundAt) metrics.deliveryLatency.observe({ channel: msg.channel }, (Date.now() - msg.inboundAt) / 1000);
    // Committed before the job completes: a delivery whose record was lost would not be retried.
    await opts.audit?.({ kind: 'message.sent', actor: `${msg.channel}:bot`, subject: msg.conversationId, data: { channel: msg.channel, messageId: msg.messageId, replyTo: msg.replyTo ?? null, bytes: Buffer.byteLength(msg.text) } });
  }, { connection: bullConnection(opts.redisTarget), prefix: PREFIX, concurrency: opts.concurrency ?? 64 });
  worker.on('failed', (job, err) => {
    metrics.errors.inc({ where: 'send' });
    logger.warn({ jobId: job?.id, attempt: job?.attemptsMade, err: err.message }, 'reply delivery failed');
  });
  watchRedisErrors(worker, `outbound worker ${channel}`, logger);
  return worker;
}

/** Jobs queued by an earlier version on the single "outbound" queue go to their channel's queue, unchanged (same id). */
function legacyDrain(opts: OutboxOptions): Worker {
  const worker = new Worker(OUTBOUND, async (job) => {
    const channel = (job.data as { channel?: unknown } | undefined)?.channel;
    if (typeof channel !== 'string' || !CHANNEL_NAME.test(channel)) throw new UnrecoverableError('an outbound job without a valid channel');
    await opts.outbound.for(channel).add(job.name, job.data, { ...OUTBOUND_JOB_OPTIONS, jobId: job.id! });
  }, { connection: bullConnection(opts.redisTarget), prefix: PREFIX, concurrency: 4 });
  watchRedisErrors(worker, 'outbound drain worker', opts.logger);
  return worker;
}
