import type { Redis } from 'ioredis';
import type { Logger } from '../logger.js';

/** How long Retry-After tells a client to wait while Redis is unreachable. */
export const RETRY_AFTER_S = 2;

/** Raised by code paths that check first and find Redis down (the HTTP error handler answers 503). */
export class RedisUnavailableError extends Error {
  readonly redisUnavailable = true;
  constructor(detail: string) {
    super(`Redis is unavailable (${detail})`);
    this.name = 'RedisUnavailableError';
  }
}

/**
 * Errors a command gets when Redis cannot be reached right now, as ioredis and BullMQ word them
 * (fail-fast commands, flushed or timed-out commands, a closed connection), as opposed to a command
 * that Redis itself rejected. These are what the HTTP API answers with 503.
 */
export function isRedisUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if ((err as { redisUnavailable?: boolean }).redisUnavailable === true) return true;
  if (err.name === 'MaxRetriesPerRequestError') return true;
  return /Stream isn't writeable|Connection is closed|Command timed out/.test(err.message);
}

/** What a connection emits while its socket cannot reach the server (refused, dropped, timed out). */
const SOCKET_ERROR = /^(connect|read|write|getaddrinfo) (ECONNREFUSED|ECONNRESET|ENOENT|EPIPE|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN)\b/;

type ErrorEmitter = { on(event: 'error', listener: (err: Error) => void): unknown };

/**
 * Watches the process' Redis connections during outages. Every client, queue and worker hands its
 * 'error' events here (BullMQ prints a raw stack trace for a queue with no listener, and ioredis
 * retries every few hundred milliseconds on each connection): an outage is one warn line when it
 * starts and one info line when the tracked connections are ready again; other errors are one line
 * each, the same one at most once a minute. State for /healthz comes from the tracked connections'
 * status (no round trip per probe) and the embedded server's supervisor.
 */
export class RedisOutages {
  private outage: { since: number; suppressed: number } | undefined;
  private readonly tracked = new Map<string, Redis>();
  private readonly recent = new Map<string, number>();
  private quiet = false;
  private readonly waiting = new Set<() => void>();

  constructor(private readonly logger: Logger, private readonly where: string, private readonly embeddedState: () => 'up' | 'restarting' | 'down' = () => 'up') {}

  /**
   * A connection whose status says whether Redis is up: the hub's shared command connection and
   * its inbound queue's (a message needs both), so /healthz turns 200 only when messages are taken.
   */
  track(name: string, client: Redis): Redis {
    this.tracked.set(name, client);
    client.on('ready', () => this.recovered());
    client.on('close', () => this.began(`${name}: the connection closed`));
    return client;
  }

  /** Routes an emitter's 'error' events to the log, one line per outage. */
  watch<T extends ErrorEmitter>(name: string, emitter: T): T {
    emitter.on('error', (err: Error) => this.error(name, err));
    return emitter;
  }

  /** Reports an outage found by other means (the embedded server exited), with its reason. */
  began(reason: string): void {
    for (const wake of this.waiting) wake();
    this.waiting.clear();
    if (this.quiet) return;
    if (this.outage) { this.outage.suppressed++; return; }
    this.outage = { since: Date.now(), suppressed: 0 };
    this.logger.warn({ redis: this.where, reason }, 'redis is unreachable: requests that need it answer 503 until it is back; connections retry on their own');
  }

  /** Whether Redis is usable now: every tracked connection is ready and the embedded server runs. */
  status(): { ok: boolean; detail: string } {
    const embedded = this.embeddedState();
    if (embedded !== 'up') return { ok: false, detail: `embedded redis-server is ${embedded}` };
    for (const [name, client] of this.tracked) {
      if (client.status !== 'ready') return { ok: false, detail: `${name} connection ${client.status}` };
    }
    return { ok: true, detail: 'connected' };
  }

  /** Resolves as soon as Redis is unavailable (at once if it is now): shutdown stops waiting for it. */
  whenUnavailable(): Promise<void> {
    if (!this.status().ok) return Promise.resolve();
    return new Promise((resolve) => this.waiting.add(resolve));
  }

  /** Shutting down: closing connections is not an outage worth a log line. */
  stop(): void { this.quiet = true; }

  /** Ends the outage once every tracked connection is ready and the embedded server (if any) runs. */
  recovered(): void {
    if (!this.outage || !this.status().ok) return;
    const { since, suppressed } = this.outage;
    this.outage = undefined;
    this.logger.info({ redis: this.where, downMs: Date.now() - since, suppressedErrors: suppressed }, 'redis is reachable again');
  }

  private error(name: string, err: Error): void {
    if (isRedisUnavailable(err) || SOCKET_ERROR.test(err.message) || this.outage) {
      if (this.outage) { this.outage.suppressed++; return; }
      if (!this.status().ok) return this.began(`${name}: ${err.message}`);
      // The tracked connections notice a dead server a moment after the busy ones: look again then.
      setTimeout(() => { if (this.status().ok) this.once(name, err); else this.began(`${name}: ${err.message}`); }, 250).unref();
      return;
    }
    this.once(name, err);
  }

  private once(name: string, err: Error): void {
    if (this.quiet) return;
    const key = `${name}\n${err.message}`;
    const last = this.recent.get(key) ?? 0;
    if (Date.now() - last < 60_000) return;
    if (this.recent.size > 100) this.recent.clear();
    this.recent.set(key, Date.now());
    this.logger.error({ source: name, err: err.message }, `${name} error`);
  }
}
