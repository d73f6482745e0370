import { Queue, type ConnectionOptions, type JobsOptions, type WorkerOptions } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';

/** The two queues of the design: channels → agent ("inbound"), agent → channels ("outbound"). */
export const INBOUND = 'inbound';
export const OUTBOUND = 'outbound';
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
