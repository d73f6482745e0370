import type { Redis } from 'ioredis';
import type { Logger } from '../logger.js';

/*
 * Reliable delivery of one outbound message as N chunks (then its files, one part each).
 *
 * The ledger (a Redis hash per outbound message id) records each chunk's fate:
 *   c<i> = "sent:<platform id>"   delivered; never sent again
 *   c<i> = "pending"              the request is (or was) in flight
 *   c<i> = "unknown"              we cannot tell whether it arrived; never sent again
 * A retried or redelivered outbound job skips sent and unknown chunks. A chunk found "pending" at the
 * start of an attempt belongs to an attempt that died mid-request (crash, kill): its outcome is
 * unknown, so it is marked "unknown", logged as "may not have arrived", and skipped. We prefer a
 * possibly missing chunk (logged, and the full reply stays in the conversation history) to a
 * duplicate reply, the complaint users of other assistants raise most.
 *
 * The adapter's sendChunk tells us what happened by what it throws:
 *   returns a platform id    → sent
 *   RetryAfter               → not sent; the job is retried after the platform's delay
 *   SendOutcomeUnknown       → maybe sent (timeout / reset after the request went out) → "unknown", go on
 *   PermanentSendError       → not sent and never will be (chat gone, bot blocked): the job fails for good
 *   anything else            → not sent (connection refused, 5xx before processing): retried with backoff
 */

/** The platform asked us to slow down: retry after `ms`. Throw it from sendChunk on HTTP 429. */
export class RetryAfter extends Error {
  constructor(readonly ms: number, detail = 'rate limited by the platform') {
    super(`${detail}; retry after ${Math.ceil(ms / 1000)} s`);
    this.name = 'RetryAfter';
  }
}

/** The request went out but no answer came back: the chunk may or may not have arrived. */
export class SendOutcomeUnknown extends Error {
  constructor(detail: string) {
    super(detail);
    this.name = 'SendOutcomeUnknown';
  }
}

/** Retrying cannot help (chat not found, bot blocked or removed): the outbound job fails for good. */
export class PermanentSendError extends Error {
  constructor(detail: string) {
    super(detail);
    this.name = 'PermanentSendError';
  }
}

const LEDGER_TTL_S = 7 * 24 * 3600;
export const ledgerKey = (channel: string, messageId: string) => `bulwark:ledger:${channel}:${messageId}`;

export type ChunkState = { state: 'sent'; platformId: string } | { state: 'pending' } | { state: 'unknown' } | { state: 'new' };

export class DeliveryLedger {
  constructor(private readonly redis: Redis, private readonly channel: string) {}

  private key(messageId: string) { return ledgerKey(this.channel, messageId); }

  async states(messageId: string, n: number): Promise<ChunkState[]> {
    const all = await this.redis.hgetall(this.key(messageId));
    return Array.from({ length: n }, (_, i) => {
      const v = all[`c${i}`];
      if (!v) return { state: 'new' } as const;
      if (v.startsWith('sent:')) return { state: 'sent', platformId: v.slice(5) } as const;
      return v === 'pending' ? { state: 'pending' } as const : { state: 'unknown' } as const;
    });
  }

  /** Claims chunk i for sending; false when another attempt already holds or finished it. */
  async claim(messageId: string, i: number): Promise<boolean> {
    const [[, set]] = (await this.redis.multi().hsetnx(this.key(messageId), `c${i}`, 'pending').expire(this.key(messageId), LEDGER_TTL_S).exec()) as [[Error | null, number]];
    return set === 1;
  }

  async sent(messageId: string, i: number, platformId: string): Promise<void> {
    await this.redis.hset(this.key(messageId), `c${i}`, `sent:${platformId}`);
  }

  async unknown(messageId: string, i: number): Promise<void> {
    await this.redis.hset(this.key(messageId), `c${i}`, 'unknown');
  }

  /** The chunk definitely did not go out: a later attempt may send it. */
  async release(messageId: string, i: number): Promise<void> {
    await this.redis.hdel(this.key(messageId), `c${i}`);
  }

  /** The platform id of the reply's draft message (drafts.ts), if one was sent. */
  async draftId(messageId: string): Promise<string | undefined> {
    return (await this.redis.hget(this.key(messageId), 'draft')) ?? undefined;
  }

  async setDraft(messageId: string, platformId: string): Promise<void> {
    await this.redis.multi().hset(this.key(messageId), 'draft', platformId).expire(this.key(messageId), LEDGER_TTL_S).exec();
  }

  async isFinal(messageId: string): Promise<boolean> {
    return (await this.redis.hexists(this.key(messageId), 'final')) === 1;
  }

  /** The final reply is being delivered: no draft may touch the message from now on. Returns the draft's id. */
  async markFinal(messageId: string): Promise<string | undefined> {
    const [, [, draft]] = (await this.redis.multi().hset(this.key(messageId), 'final', '1').hget(this.key(messageId), 'draft').expire(this.key(messageId), LEDGER_TTL_S).exec()) as [[Error | null, number], [Error | null, string | null]];
    return draft ?? undefined;
  }

  /** Platform ids of the delivered chunks, in order (for edits or threading). */
  async platformIds(messageId: string): Promise<string[]> {
    const all = await this.redis.hgetall(this.key(messageId));
    return Object.keys(all).filter((k) => /^c\d+$/.test(k)).sort((a, b) => Number(a.slice(1)) - Number(b.slice(1)))
      .map((k) => all[k]!).filter((v) => v.startsWith('sent:')).map((v) => v.slice(5));
  }
}

/**
 * Spaces sends: at least `perChatMs` between two messages to one chat, at most `globalPerS` per
 * second over all chats. In-process: each gateway holds one adapter per bot token, and the platform
 * limits are per bot.
 */
export class RateLimiter {
  private readonly nextPerChat = new Map<string, number>();
  private readonly recent: number[] = [];
  constructor(private readonly perChatMs: number, private readonly globalPerS: number) {}

  /** Resolves when a message to `chat` may go out, and books that slot. */
  async wait(chat: string): Promise<void> {
    for (;;) {
      const now = Date.now();
      while (this.recent.length > 0 && this.recent[0]! <= now - 1000) this.recent.shift();
      const chatAt = this.nextPerChat.get(chat) ?? 0;
      const globalAt = this.recent.length >= this.globalPerS ? this.recent[0]! + 1000 : 0;
      const at = Math.max(chatAt, globalAt);
      if (at <= now) {
        this.recent.push(now);
        this.nextPerChat.set(chat, now + this.perChatMs);
        if (this.nextPerChat.size > 10_000) this.prune(now);
        return;
      }
      await new Promise((r) => setTimeout(r, at - now));
    }
  }

  private prune(now: number): void {
    for (const [k, t] of this.nextPerChat) if (t < now) this.nextPerChat.delete(k);
  }
}

export interface DeliverOptions {
  channel: string;
  /** The outbound message id (the ledger key). */
  messageId: string;
  /** Rate-limit bucket: the platform chat. */
  chat: string;
  chunks: string[];
  ledger: DeliveryLedger;
  limiter: RateLimiter;
  logger: Logger;
  /** Sends chunk i; returns the platform's message id. */
  sendChunk(text: string, index: number): Promise<string>;
  /** Further parts sent after the chunks (the reply's files), under the same ledger rules; each returns the platform id. */
  files?: Array<() => Promise<string>>;
}

export interface DeliveryReport { sent: number; skipped: number; unknown: number[] }

/** Sends the chunks not yet delivered, in order; see the file comment for the outcome rules. */
export async function deliverChunks(o: DeliverOptions): Promise<DeliveryReport> {
  const report: DeliveryReport = { sent: 0, skipped: 0, unknown: [] };
  const files = o.files ?? [];
  const total = o.chunks.length + files.length;
  const send = (i: number) => (i < o.chunks.length ? o.sendChunk(o.chunks[i]!, i) : files[i - o.chunks.length]!());
  const states = await o.ledger.states(o.messageId, total);
  for (let i = 0; i < total; i++) {
    const st = states[i]!;
    if (st.state === 'sent' || st.state === 'unknown') { report.skipped += 1; continue; }
    if (st.state === 'pending' || !(await o.ledger.claim(o.messageId, i))) {
      await o.ledger.unknown(o.messageId, i);
      o.logger.warn({ channel: o.channel, messageId: o.messageId, chunk: i, of: total }, 'an earlier attempt died while sending this chunk: it may not have arrived; not re-sending it (no duplicates)');
      report.unknown.push(i);
      continue;
    }
    await o.limiter.wait(o.chat);
    try {
      const platformId = await send(i);
      await o.ledger.sent(o.messageId, i, platformId);
      report.sent += 1;
    } catch (err) {
      if (err instanceof SendOutcomeUnknown) {
        await o.ledger.unknown(o.messageId, i);
        o.logger.warn({ channel: o.channel, messageId: o.messageId, chunk: i, of: total, err: err.message }, 'chunk may not have arrived (no answer after the request went out); not re-sending it');
        report.unknown.push(i);
        continue;
      }
      await o.ledger.release(o.messageId, i);
      throw err;
    }
  }
  return report;
}
