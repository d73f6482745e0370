import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { TextCipher } from '../conversations/cipher.js';
import type { Logger } from '../logger.js';
import type { LeakDetector } from '../vault/leak.js';
import { outboundMessageSchema, type OutboundMessage } from './contract.js';

/*
 * Drafts: a long answer shown while the model is still writing it (Telegram edits one message as the
 * text grows; the final reply then replaces the draft). Best effort by design: a draft that is lost,
 * late or refused changes nothing, because the final reply goes through the outbound queue and the
 * delivery ledger like every reply. Drafts travel over Redis pub/sub (never stored), sealed with the
 * conversation's key like every queue payload.
 *
 * The leak guard cannot see the end of a text that is still being written: a secret whose first half
 * is on screen is already half leaked. So a draft shows only what the guard has seen whole: the
 * redacted text without its last `hold` characters, where `hold` is at least the longest stretch one
 * leak of a known secret can cover (its longest encoding, or its pieces with the widest gaps the
 * detector allows; LeakDetector.maxSpan) and never less than DRAFT_HOLD_MIN. Private key blocks
 * without their END line are redacted to the end of the text; credential formats of open length are
 * matched from their prefix. The one thing a draft can show that the final reply would have caught is
 * a secret spelled out with separators spanning more than `hold` characters; the final edit then
 * replaces it.
 */

export const DRAFT_TOPIC = 'bulwark:drafts';
/** Never show the last this-many characters of a text still being written. */
export const DRAFT_HOLD_MIN = 1024;
/** At most one draft per reply per this interval (Telegram allows about one edit per second per chat). */
export const DRAFT_EVERY_MS = 1000;

const draftSchema = outboundMessageSchema.pick({ channel: true, accountId: true, chatId: true, conversationId: true, messageId: true, replyTo: true }).extend({
  /** Increases with every draft of one reply (also across re-runs of a turn); older drafts arriving late are dropped. */
  n: z.number().int().positive(),
  sealed: z.string().min(1).max(2_000_000),
});

export type DraftTarget = Pick<OutboundMessage, 'channel' | 'accountId' | 'chatId' | 'conversationId' | 'messageId' | 'replyTo'>;
/** A draft as an adapter receives it: the reply so far (safe prefix), addressed like the reply. */
export type Draft = DraftTarget & { n: number; text: string };

const draftContext = (messageId: string, n: number) => `draft:${messageId}:${n}`;

/** What of `text` (still being written) may be shown: redacted, without the last `hold` characters, cut at a line or word end. */
export function visiblePrefix(text: string, detector: LeakDetector): string {
  const hold = Math.max(DRAFT_HOLD_MIN, detector.maxSpan);
  const { redacted } = detector.redact(text);
  if (redacted.length <= hold) return '';
  const cut = redacted.length - hold;
  const line = redacted.lastIndexOf('\n', cut);
  if (line > cut - 400 && line > 0) return redacted.slice(0, line);
  const word = redacted.lastIndexOf(' ', cut);
  return redacted.slice(0, word > 0 ? word : cut);
}

export interface DraftWriter {
  /** The reply text so far (the current step's); cheap to call for every streamed piece. */
  update(textSoFar: string): void;
  /** Stops drafting (the turn is over): no draft is published after this resolves. */
  close(): Promise<void>;
}

/**
 * The worker's side: publishes at most one draft per `everyMs` for one reply, and only when what may
 * be shown has changed.
 */
export function draftWriter(o: { redis: Redis; cipher: Pick<TextCipher, 'seal'>; detector: () => Promise<LeakDetector>; target: DraftTarget; logger: Logger; everyMs?: number }): DraftWriter {
  const every = o.everyMs ?? DRAFT_EVERY_MS;
  let latest = '';
  let shown = '';
  let n = 0;
  let lastAt = 0;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  let closed = false;

  const publish = async () => {
    timer = undefined;
    if (closed) return;
    lastAt = Date.now();
    const visible = visiblePrefix(latest, await o.detector());
    if (closed || visible === shown || visible.length === 0) return;
    shown = visible;
    // Time-based, so the drafts of a turn re-run after a crash are newer than the first run's.
    n = Math.max(n + 1, Date.now());
    const sealed = await o.cipher.seal(o.target.conversationId, draftContext(o.target.messageId, n), visible);
    await o.redis.publish(DRAFT_TOPIC, JSON.stringify({ ...o.target, n, sealed }));
  };

  return {
    update(textSoFar) {
      latest = textSoFar;
      if (closed || timer) return;
      timer = setTimeout(() => {
        running = running.then(publish).catch((err: Error) => o.logger.debug({ err: err.message }, 'could not publish a draft'));
      }, Math.max(0, lastAt + every - Date.now()));
    },
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      await running;
    },
  };
}

/**
 * The gateway's side: one subscriber connection; each draft is checked, opened and handed to the
 * adapter of its channel. Drafts for channels without a handler are ignored.
 */
export class DraftFeed {
  constructor(
    private readonly sub: Redis,
    private readonly cipher: Pick<TextCipher, 'open'>,
    private readonly handlers: Map<string, (d: Draft) => Promise<void>>,
    private readonly logger: Logger,
  ) {
    sub.on('message', (topic: string, payload: string) => {
      if (topic === DRAFT_TOPIC) this.receive(payload).catch((err: Error) => this.logger.debug({ err: err.message }, 'draft dropped'));
    });
  }

  async start(): Promise<void> {
    await this.sub.subscribe(DRAFT_TOPIC);
  }

  private async receive(payload: string): Promise<void> {
    const parsed = draftSchema.safeParse(JSON.parse(payload));
    if (!parsed.success) return;
    const { sealed, ...d } = parsed.data;
    const handler = this.handlers.get(d.channel);
    if (!handler) return;
    const text = await this.cipher.open(d.conversationId, draftContext(d.messageId, d.n), sealed);
    await handler({ ...d, text });
  }

  async stop(): Promise<void> {
    this.sub.disconnect();
  }
}
