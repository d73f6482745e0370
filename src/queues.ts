import { Queue, type ConnectionOptions, type JobsOptions, type WorkerOptions } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';
import { CHANNEL_NAME } from './channels/contract.js';
import type { Logger } from './logger.js';
import { RedisOutages, RedisUnavailableError } from './redis/outages.js';

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

/**
 * Reconnect soon and keep trying every 2 s at most: BullMQ's own default backs off to 20 s, so
 * after a long outage its queues and workers would lag behind a Redis that is back for that long.
 */
const reconnectDelay = (attempt: number) => Math.min(attempt * 100, 2_000);

export function redisOptions(target: RedisTarget, extra: RedisOptions = {}): RedisOptions {
  const base: RedisOptions = { maxRetriesPerRequest: null, enableReadyCheck: true, lazyConnect: false, retryStrategy: reconnectDelay, ...extra };
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

/**
 * For connections that serve requests (the hub's shared command connection, queue producers): while
 * Redis is down a command fails at once instead of waiting in ioredis' offline queue for a
 * reconnect that may never come (an HTTP request would hang, start-up would retry forever); one
 * already sent is given up after one reconnect attempt or COMMAND_TIMEOUT_MS. Workers' blocking
 * connections keep the patient defaults: they wait for Redis and carry on by themselves.
 */
export const COMMAND_TIMEOUT_MS = 5_000;
export const FAIL_FAST: RedisOptions = { enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: COMMAND_TIMEOUT_MS };

/**
 * The fail-fast command connection, once it is ready; rejects with the last connection error when
 * Redis does not answer within `timeoutMs` (a fail-fast client rejects commands until it is ready).
 */
export async function connectCommandRedis(target: RedisTarget, timeoutMs: number): Promise<Redis> {
  const client = createRedis(target, FAIL_FAST);
  let last: Error | undefined;
  const onError = (err: Error) => { last = err; };
  client.on('error', onError);
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(last ?? new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      client.once('ready', () => { clearTimeout(timer); resolve(); });
    });
  } catch (err) {
    client.disconnect();
    throw err;
  } finally {
    client.off('error', onError);
  }
  return client;
}

const outagesByLogger = new WeakMap<Logger, RedisOutages>();

/**
 * The process' outage log for this logger (the hub installs its own with `use` before it opens any
 * connection). Every Redis client, BullMQ queue and worker reports here, so an outage is one line.
 */
export function redisOutages(logger: Logger, use?: RedisOutages): RedisOutages {
  let o = use ?? outagesByLogger.get(logger);
  if (!o) o = new RedisOutages(logger, 'redis');
  outagesByLogger.set(logger, o);
  return o;
}

/** Gives an emitter of Redis errors (client, Queue, Worker) the one 'error' listener it needs. */
export function watchRedisErrors<T extends { on(event: 'error', listener: (err: Error) => void): unknown }>(emitter: T, name: string, logger: Logger | undefined): T {
  // Without a logger (a test's own queue) the errors surface in the calls that meet them.
  if (!logger) { emitter.on('error', () => undefined); return emitter; }
  return redisOutages(logger).watch(name, emitter);
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

/** A producer queue: fail-fast connection (see FAIL_FAST), errors to the outage log. */
export function createQueue(name: string, target: RedisTarget, logger?: Logger): Queue {
  return watchRedisErrors(new Queue(name, { connection: redisOptions(target, FAIL_FAST) as ConnectionOptions, prefix: PREFIX }), `queue ${name}`, logger);
}

/** A family of queues with one per channel ("<base>-<channel>"), created when first used. */
export class ChannelQueues {
  private readonly queues = new Map<string, Queue>();
  /** One connection for all of them (adding jobs and reading counts never block). */
  private connection: Redis | undefined;
  constructor(private readonly target: RedisTarget, private readonly base = OUTBOUND, private readonly logger?: Logger) {}

  /** The queue of one channel (a name the contract validated: lowercase letters, digits, '-'). */
  for(channel: string): Queue {
    if (!CHANNEL_NAME.test(channel)) throw new Error(`"${channel.slice(0, 40)}" is not a channel name`);
    let q = this.queues.get(channel);
    if (!q) {
      // BullMQ would wait for a lost connection to come back before a new queue's first command.
      const lost = this.connection?.status === 'reconnecting' || this.connection?.status === 'end';
      if (lost) throw new RedisUnavailableError(`the connection of the ${this.base} queues is ${this.connection!.status}`);
      this.connection ??= watchRedisErrors(createRedis(this.target, FAIL_FAST), `${this.base} queues`, this.logger);
      q = watchRedisErrors(new Queue(`${this.base}-${channel}`, { connection: this.connection, prefix: PREFIX }), `queue ${this.base}-${channel}`, this.logger);
      this.queues.set(channel, q);
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
