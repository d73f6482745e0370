/** Calls to the model are paused: it failed too often in a row. Not retried by the AI SDK. */
export class CircuitOpenError extends Error {
  constructor(readonly failures: number, readonly retryInMs: number) {
    super(`the model failed ${failures} times in a row, so calls to it are paused for ${Math.ceil(retryInMs / 1000)} s (llm.breaker_cooldown_ms)`);
    this.name = 'CircuitOpenError';
  }
}

export interface BreakerOptions {
  /** Consecutive failed calls that open the breaker. */
  failures: number;
  /** How long it stays open before one probe call may try the model again. */
  cooldownMs: number;
  now?: () => number;
}

/**
 * A circuit breaker for one model: after `failures` failed calls in a row (errors, timeouts) it
 * opens and every call fails at once for `cooldownMs`, instead of each turn waiting out its own
 * timeouts and retries against a model that is down. Then it lets a single probe through
 * (half-open): a success closes it, a failure opens it for another cool-down.
 */
export class CircuitBreaker {
  private consecutive = 0;
  private openUntil = 0;
  private opened = false;
  private probing = false;
  private readonly now: () => number;

  constructor(private readonly opts: BreakerOptions) {
    this.now = opts.now ?? Date.now;
  }

  get state(): 'closed' | 'open' | 'half-open' {
    if (!this.opened) return 'closed';
    return this.now() < this.openUntil ? 'open' : 'half-open';
  }

  /** Before a call: throws CircuitOpenError when the call must not reach the model. */
  admit(): void {
    const state = this.state;
    if (state === 'closed') return;
    if (state === 'half-open' && !this.probing) {
      this.probing = true;
      return;
    }
    throw new CircuitOpenError(this.consecutive, Math.max(0, this.openUntil - this.now()) || this.opts.cooldownMs);
  }

  succeeded(): void {
    this.consecutive = 0;
    this.opened = false;
    this.probing = false;
  }

  failed(): void {
    this.consecutive++;
    if (this.probing || this.consecutive >= this.opts.failures) {
      this.opened = true;
      this.openUntil = this.now() + this.opts.cooldownMs;
    }
    this.probing = false;
  }

  /** The call ended without telling whether the model works (cancelled, or refused the request). */
  inconclusive(): void {
    this.probing = false;
  }
}
