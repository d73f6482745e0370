import { Queue, type ConnectionOptions, type JobsOptions, type WorkerOptions } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';
import { CHANNEL_NAME } from './channels/contract.js';

/**
 * The two queues of the design: channels → agent ("inbound"), agent → channels ("outbound"). The
 * outbound side is one queue per channel ("outbound-telegram", "outbound-web", …): a gateway
 * consumes only the channels it runs, so gateways with different channels (one of them on the
 * machine with Chromium for WhatsApp, say) can share one Redis without taking each other's replies.
 * "outbound" itself is the single queue of earlier versions, drained into the per-channel ones.
 */
export const INBOUND = 'inbound';
export const OUTBOUND = 'outbound';
export const outboundQueueName = (channel: string) => `${OUTBOUND}-${channel}`;
export const PREFIX = 'bulwark';

/** How to reach Redis: a URL (redis://, rediss://, redis+unix:///path) or the embedded server's unix socket. */
export type RedisTarget = { url: string } | { path: string };

export function redisOptions(target: RedisTarget, extra: RedisOptions = {}): RedisOptions {
  const base: RedisOptions = { maxRetriesPerRequest: null, enableReadyCheck: true, lazyConnect: false, ...extra };
  if ('path' in target) return { ...base, path: target.path };
  const u = new URL(target.url);
  if (u.protocol === 'redis+unix:') return { ...base, path: decodeURIComponent(u.pathname) };
  return {
    ...base,
    host: u.hostname,
    port: Number(u.port || 6379),
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(u.pathname.length > 1 ? { db: Number(u.pathname.slice(1)) } : {}),
    ...(u.protocol === 'rediss:' ? { tls: {} } : {}),
  };
}

export function createRedis(target: RedisTarget, extra: RedisOptions = {}): Redis {
  return new Redis(redisOptions(target, extra));
}

/** Redis connection shown to a human: never the password. */
export function displayRedis(target: RedisTarget): string {
  if ('path' in target) return `unix:${target.path}`;
  const u = new URL(target.url);
  if (u.password) u.password = '***';
  return u.toString();
}

/*
 * Accepted messages must survive a crash: jobs are retried with backoff, and finished jobs are
 * trimmed so Redis does not grow without bound (dedupe of redeliveries does not rely on them; see
 * Inbox).
 */
export const INBOUND_JOB_OPTIONS: JobsOptions = {
  attempts: 5,
  backoff: { type: 'exponential', delay: 1000 },
  removeOnComplete: { age: 3600, count: 1000 },
  removeOnFail: { age: 7 * 24 * 3600 },
};

export const OUTBOUND_JOB_OPTIONS: JobsOptions = {
  attempts: 8,
  backoff: { type: 'exponential', delay: 1000 },
  removeOnComplete: { age: 24 * 3600, count: 20_000 },
  removeOnFail: { age: 7 * 24 * 3600 },
};

/** Connection settings in the form BullMQ takes (its option type is looser than ioredis' own). */
export function bullConnection(target: RedisTarget): ConnectionOptions {
  return redisOptions(target) as ConnectionOptions;
}

/**
 * Options for a worker whose jobs hold a lock while they run (agent turns, routine runs): a worker
 * that dies loses its claim after `lockMs`, and the stalled check (every half lock) hands the job on.
 */
export function lockedWorkerOptions(target: RedisTarget, o: { concurrency: number; lockMs: number; maxStalledCount: number }): WorkerOptions {
  return {
    connection: bullConnection(target),
    prefix: PREFIX,
    concurrency: o.concurrency,
    lockDuration: o.lockMs,
    stalledInterval: Math.max(1000, Math.floor(o.lockMs / 2)),
    maxStalledCount: o.maxStalledCount,
  };
}

export function createQueue(name: string, target: RedisTarget): Queue {
  return new Queue(name, { connection: bullConnection(target), prefix: PREFIX });
}

/** A family of queues with one per channel ("<base>-<channel>"), created when first used. */
export class ChannelQueues {
  private readonly queues = new Map<string, Queue>();
  /** One connection for all of them (adding jobs and reading counts never block). */
  private connection: Redis | undefined;
  constructor(private readonly target: RedisTarget, private readonly base = OUTBOUND) {}

  /** The queue of one channel (a name the contract validated: lowercase letters, digits, '-'). */
  for(channel: string): Queue {
    if (!CHANNEL_NAME.test(channel)) throw new Error(`"${channel.slice(0, 40)}" is not a channel name`);
    let q = this.queues.get(channel);
    if (!q) {
      // Connection errors surface in the calls (add, counts) that meet them; no separate report.
      this.connection ??= createRedis(this.target).on('error', () => undefined);
      this.queues.set(channel, (q = new Queue(`${this.base}-${channel}`, { connection: this.connection, prefix: PREFIX })));
    }
    return q;
  }

  /** Job counts summed over the given channels' queues (for /metrics and `bulwark status`). */
  async counts(channels: readonly string[]): Promise<Record<string, number>> {
    const sum: Record<string, number> = {};
    for (const c of channels) {
      for (const [state, n] of Object.entries(await this.for(c).getJobCounts('waiting', 'active', 'delayed', 'failed'))) sum[state] = (sum[state] ?? 0) + n;
    }
    return sum;
  }

  async close(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => q.close()));
    await this.connection?.quit().catch(() => undefined);
  }
}

/** The replies' queues: one per channel. */
export type OutboundQueues = ChannelQueues;
