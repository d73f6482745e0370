import { GrammyError, HttpError } from 'grammy';
import { PermanentSendError, RetryAfter, SendOutcomeUnknown } from '../delivery.js';

/*
 * Telegram failures sorted by what to do about them. grammY throws GrammyError when the Bot API
 * answered with an error, HttpError when the HTTP call itself failed.
 */

export const TOKEN_REJECTED = 'the bot token was rejected (401 Unauthorized) — run `bulwark secret add telegram.token --replace` with the token from @BotFather, then restart';
export const CONFLICT = 'another program polls this bot (409 Conflict): stop the other Bulwark/bot instance using this token, or remove its webhook; retrying every 60 s';

export type PollFailure =
  | { kind: 'token' }
  | { kind: 'conflict' }
  | { kind: 'retry-after'; ms: number }
  | { kind: 'transient'; detail: string };

export function classifyPollError(err: unknown): PollFailure {
  if (err instanceof GrammyError) {
    if (err.error_code === 401 || err.error_code === 404) return { kind: 'token' };
    if (err.error_code === 409) return { kind: 'conflict' };
    if (err.error_code === 429) return { kind: 'retry-after', ms: (err.parameters.retry_after ?? 5) * 1000 };
    return { kind: 'transient', detail: `Bot API error ${err.error_code}: ${err.description}` };
  }
  if (err instanceof HttpError) return { kind: 'transient', detail: `connection to the Bot API failed: ${causeOf(err)}` };
  return { kind: 'transient', detail: (err as Error)?.message ?? String(err) };
}

function causeOf(err: HttpError): string {
  const inner = err.error as { code?: string; message?: string; cause?: { code?: string } } | undefined;
  return inner?.code ?? inner?.cause?.code ?? inner?.message ?? err.message;
}

/** Errors where the request provably never reached Telegram. */
const NOT_SENT = /ECONNREFUSED|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|ERR_INVALID_URL/;

/** Maps a sendMessage failure onto the delivery rules (see ../delivery.ts). */
export function classifySendError(err: unknown): Error {
  if (err instanceof GrammyError) {
    if (err.error_code === 429) return new RetryAfter((err.parameters.retry_after ?? 5) * 1000, 'Telegram rate limit (429)');
    if (err.error_code === 403) return new PermanentSendError(`Telegram refused the message (403): ${err.description} — the user blocked the bot or removed it from the chat`);
    if (err.error_code === 400) return new PermanentSendError(`Telegram rejected the message (400): ${err.description}`);
    if (err.error_code === 401) return new Error(TOKEN_REJECTED);
    return new Error(`Telegram error ${err.error_code}: ${err.description}`);
  }
  if (err instanceof HttpError) {
    const cause = causeOf(err);
    if (NOT_SENT.test(cause)) return new Error(`could not reach the Bot API (${cause})`);
    return new SendOutcomeUnknown(`no answer from the Bot API after sending (${/timed out/.test(err.message) ? 'timeout' : cause})`);
  }
  return err instanceof Error ? err : new Error(String(err));
}

/** A 400 caused by our HTML (should not happen): the text is then sent without formatting. */
export function isParseError(err: unknown): boolean {
  return err instanceof GrammyError && err.error_code === 400 && /can't parse entities|unsupported start tag|can't find end tag/i.test(err.description);
}
