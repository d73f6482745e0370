import { DiscordAPIError, HTTPError, RateLimitError, Routes, type REST } from 'discord.js';
import { PermanentSendError, RetryAfter, SendOutcomeUnknown } from '../delivery.js';

/*
 * Sending to Discord over REST (discord.js's REST client: rate-limit buckets, auth), with every
 * failure mapped to the delivery ledger's outcomes so a retried job never re-sends a delivered chunk.
 */

/** Nobody is ever pinged by the bot: not @everyone/@here, not roles, not users, not the replied-to author. */
export const NO_PINGS = { parse: [] as string[], replied_user: false };

/** An interaction being answered: its webhook works for 15 minutes after the command. */
export interface PendingInteraction { applicationId: string; token: string; expiresAt: number }

export const INTERACTION_TTL_MS = 14 * 60_000;

/*
 * SUPPRESS_EMBEDS: Discord fetches every URL in a message to build a preview. A tricked model could
 * put data into a URL's query and Discord's fetcher would deliver it to that server: no previews.
 */
export const SUPPRESS_EMBEDS = 1 << 2;

/** Discord error codes after which retrying the same send cannot succeed. */
const PERMANENT_CODES = new Map<number, string>([
  [10003, 'the channel no longer exists'],
  [10015, 'the interaction webhook is gone'],
  [50001, 'the bot has no access to this channel (re-invite it or give it the View Channel permission)'],
  [50007, 'the user does not accept direct messages from the bot'],
  [50013, 'the bot lacks the Send Messages permission in this channel'],
  [50035, 'Discord rejected the message as malformed'],
]);

const NOT_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT']);

function causeCode(err: unknown): string | undefined {
  let e = err as { code?: unknown; cause?: unknown } | undefined;
  for (let i = 0; e && i < 5; i++, e = e.cause as typeof e) if (typeof e.code === 'string') return e.code;
  return undefined;
}

/** A REST failure as the ledger's outcome: RetryAfter, PermanentSendError, SendOutcomeUnknown, or a plain (retry) Error. */
export function classifySendError(err: unknown): Error {
  if (err instanceof RateLimitError) return new RetryAfter(Math.max(250, err.retryAfter), 'Discord rate limit');
  if (err instanceof DiscordAPIError) {
    const known = typeof err.code === 'number' ? PERMANENT_CODES.get(err.code) : undefined;
    if (known) return new PermanentSendError(`Discord ${err.status} (${err.code}): ${known}`);
    if (err.status === 403 || err.status === 404) return new PermanentSendError(`Discord ${err.status}: ${err.message}`);
    // 401 (token being replaced) and anything else: not sent; retried with backoff.
    return new Error(`Discord ${err.status}: ${err.message}`);
  }
  // A 5xx answer: Discord did not take the message.
  if (err instanceof HTTPError) return new Error(`Discord HTTP ${err.status}`);
  const code = causeCode(err);
  if (code && NOT_SENT.has(code)) return new Error(`cannot reach Discord (${code})`);
  // Timeout or reset after the request went out: it may have arrived. Never blindly repeated.
  return new SendOutcomeUnknown(`no answer from Discord (${code ?? (err as Error)?.name ?? 'unknown error'})`);
}

/** One file as discord.js's REST client uploads it (multipart part `files[0]`, named `name`). */
export interface UploadFile { name: string; data: Buffer; contentType?: string }

/**
 * Posts one chunk (or, with `file`, one upload); the first chunk of a reply references the user's
 * message. Through an interaction the deferred answer becomes the first chunk and the rest are
 * follow-ups on its webhook; a webhook that is gone falls back to the channel. Returns the message id.
 */
export async function postChunk(rest: REST, o: { channelId: string; content: string; replyTo?: string | undefined; interaction?: PendingInteraction | undefined; first: boolean; file?: UploadFile | undefined; previews?: boolean }): Promise<string> {
  // Embeds stay suppressed unless the owner turned link_previews on for Discord.
  const flags = o.previews ? 0 : SUPPRESS_EMBEDS;
  const idOf = (res: unknown) => { const id = (res as { id?: unknown } | undefined)?.id; return typeof id === 'string' ? id : 'unknown'; };
  // An upload needs no text; Discord refuses an empty `content` only when nothing else is in the message.
  const content = o.content || !o.file ? { content: o.content } : {};
  const files = o.file ? { files: [{ name: o.file.name, data: o.file.data, ...(o.file.contentType ? { contentType: o.file.contentType } : {}) }] } : {};
  if (o.interaction && o.interaction.expiresAt > Date.now()) {
    const { applicationId, token } = o.interaction;
    const body = { ...content, allowed_mentions: NO_PINGS, flags };
    try {
      // The deferred "thinking…" message becomes the first chunk; the rest are follow-ups.
      return idOf(o.first
        ? await rest.patch(Routes.webhookMessage(applicationId, token, '@original'), { body, auth: false, ...files })
        : await rest.post(Routes.webhook(applicationId, token), { body, auth: false, query: new URLSearchParams({ wait: 'true' }), ...files }));
    } catch (err) {
      // An interaction webhook that is gone (expired, deleted) did not take the message: post it in the channel.
      if (!(err instanceof DiscordAPIError && err.status === 404)) throw classifySendError(err);
    }
  }
  try {
    return idOf(await rest.post(Routes.channelMessages(o.channelId), {
      body: {
        ...content, allowed_mentions: NO_PINGS, flags,
        ...(o.first && o.replyTo ? { message_reference: { message_id: o.replyTo, fail_if_not_exists: false } } : {}),
      },
      ...files,
    }));
  } catch (err) {
    throw classifySendError(err);
  }
}

/** Escapes Discord Markdown so text written by someone else (an agent's reason) shows as it is. */
export function plainDiscordText(text: string): string {
  return text.replace(/([\\*_~`|])/g, '\\$1').replace(/^([>#-])/gm, '\\$1');
}
