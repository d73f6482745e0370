import { DelayedError, UnrecoverableError, Worker } from 'bullmq';
import type { TextCipher } from '../conversations/cipher.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { OUTBOUND, PREFIX, bullConnection, type RedisTarget } from '../queues.js';
import type { ChannelAdapter, OutboundMessage } from './contract.js';
import { openOutbound } from './queue-payloads.js';
import type { AuditSink } from '../audit/log.js';
import { PermanentSendError, RetryAfter } from './delivery.js';

/**
 * Consumes the outbound queue and hands each reply to the adapter of its channel. Runs in the
 * gateway role, where the adapters are. A failed send is retried with backoff by BullMQ.
 */
export function startOutbox(opts: { redisTarget: RedisTarget; adapters: Map<string, ChannelAdapter>; cipher: TextCipher; metrics: Metrics; logger: Logger; concurrency?: number; audit?: AuditSink }): Worker {
  const { adapters, metrics, logger } = opts;
  const worker = new Worker(OUTBOUND, async (job, token) => {
    let msg: OutboundMessage;
    try {
      msg = await openOutbound(opts.cipher, job.data);
    } catch (err) {
      metrics.errors.inc({ where: 'outbound_payload' });
      const issue = (err as { issues?: Array<{ message: string }> }).issues?.[0]?.message;
      throw new UnrecoverableError(`invalid outbound job payload: ${issue ?? (err as Error).message}`);
    }
    const adapter = adapters.get(msg.channel);
    if (!adapter) throw new Error(`channel "${msg.channel}" is not enabled on this gateway`);
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
    opts.audit?.({ kind: 'message.sent', actor: `${msg.channel}:bot`, subject: msg.conversationId, data: { channel: msg.channel, messageId: msg.messageId, replyTo: msg.replyTo ?? null, bytes: Buffer.byteLength(msg.text) } });
  }, { connection: bullConnection(opts.redisTarget), prefix: PREFIX, concurrency: opts.concurrency ?? 64 });
  worker.on('failed', (job, err) => {
    metrics.errors.inc({ where: 'send' });
    logger.warn({ jobId: job?.id, attempt: job?.attemptsMade, err: err.message }, 'reply delivery failed');
  });
  worker.on('error', (err) => logger.error({ err: err.message }, 'outbound worker error'));
  return worker;
}
