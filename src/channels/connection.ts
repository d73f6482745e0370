import type { Logger } from '../logger.js';
import type { ChannelStatus } from './contract.js';

/*
 * An adapter's real connection state, for /readyz and `bulwark status`, plus the reconnect policy.
 * "connected" is only ever set by the adapter after the platform answered (getMe + first poll, socket
 * hello, gateway READY), so a silent reconnect loop can never look healthy. A permanent error (bad
 * token, another poller) parks the adapter in "error" with ONE log line and no retry loop.
 */
export class ConnectionState {
  private current: ChannelStatus;
  private lastLogged = '';

  constructor(readonly name: string, private readonly logger: Logger) {
    this.current = { name, state: 'connecting', detail: 'starting' };
  }

  status(): ChannelStatus {
    return { ...this.current };
  }

  get state(): ChannelStatus['state'] { return this.current.state; }

  /** Whether a permanent error stopped the adapter (it will not reconnect by itself). */
  get failed(): boolean { return this.current.state === 'error'; }

  connected(detail?: string): void {
    if (this.current.state !== 'connected') this.logger.info({ channel: this.name, detail }, 'channel connected');
    this.set('connected', detail);
  }

  connecting(detail: string): void { this.set('connecting', detail); }

  /** A transient loss; logs once per distinct detail so a flapping link does not flood the log. */
  disconnected(detail: string): void {
    if (this.lastLogged !== detail) this.logger.warn({ channel: this.name, detail }, 'channel disconnected; reconnecting');
    this.lastLogged = detail;
    this.set('disconnected', detail);
  }

  /** A permanent problem the user must fix; logged once. */
  error(detail: string): void {
    if (this.current.state !== 'error' || this.current.detail !== detail) this.logger.error({ channel: this.name, detail }, 'channel stopped');
    this.set('error', detail);
  }

  stopped(): void { this.set('disconnected', 'stopped'); }

  private set(state: ChannelStatus['state'], detail: string | undefined): void {
    if (state === 'connected') this.lastLogged = '';
    this.current = { name: this.name, state, ...(detail ? { detail } : {}) };
  }
}

/** Exponential backoff with full jitter: attempt 0 → up to base ms, capped at max ms. */
export function backoffMs(attempt: number, baseMs = 1000, maxMs = 60_000, random = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 20));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

/** Resolves after `ms`, or early when the signal aborts (used between reconnect attempts). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() { clearTimeout(t); signal?.removeEventListener('abort', done); resolve(); }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/*
 * Platform libraries put the token into URLs (Telegram: /bot<token>/method) and sometimes into error
 * messages. Everything an adapter logs or shows in a status detail goes through scrub().
 */
export function scrub(text: string, secrets: ReadonlyArray<string | undefined>): string {
  let out = text;
  for (const s of secrets) if (s && s.length >= 6) out = out.split(s).join('[redacted]');
  return out
    .replace(/\/bot\d+:[A-Za-z0-9_-]{20,}/g, '/bot[redacted]')
    .replace(/\b\d{6,}:[A-Za-z0-9_-]{30,}\b/g, '[redacted]')
    .replace(/\bx(?:ox[abposr]|app)-[A-Za-z0-9-]{10,}/g, '[redacted]');
}
