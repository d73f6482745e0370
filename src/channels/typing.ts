import type { Logger } from '../logger.js';

/*
 * "typing…" while the agent works on a message. Platforms show the action for ~5 s, so it is
 * repeated every `everyMs` until the reply to that inbound message is delivered, or `maxMs` passes
 * (a turn that died must not leave the bot typing forever). In-process: the reply is normally sent
 * by the same gateway that accepted the message; when another gateway sends it, the bound stops it.
 */
export class TypingIndicator {
  private readonly active = new Map<string, { timer: NodeJS.Timeout; until: number }>();

  constructor(private readonly logger: Logger, private readonly everyMs = 4500, private readonly maxMs = 120_000) {}

  /** Starts (or extends) typing for the reply to inbound message `key`. */
  start(key: string, action: () => Promise<unknown>): void {
    this.stop(key);
    const until = Date.now() + this.maxMs;
    const fire = () => { action().catch((err: Error) => this.logger.debug({ err: err.message }, 'typing action failed')); };
    fire();
    const timer = setInterval(() => {
      if (Date.now() >= until) { this.stop(key); return; }
      fire();
    }, this.everyMs);
    timer.unref();
    this.active.set(key, { timer, until });
  }

  stop(key: string): void {
    const a = this.active.get(key);
    if (a) { clearInterval(a.timer); this.active.delete(key); }
  }

  stopAll(): void {
    for (const k of [...this.active.keys()]) this.stop(k);
  }

  get size(): number { return this.active.size; }
}
