import { webApi } from '@slack/bolt';
import { PermanentSendError, RetryAfter, SendOutcomeUnknown } from '../delivery.js';

/*
 * What a failed Slack Web API call means for us. The WebClient runs with retries off and
 * `rejectRateLimitedCalls`, so every failure surfaces here once and the delivery ledger decides
 * what to do: never a blind re-send.
 */

/** The token is bad for good: the user must fix it; the adapter parks in "error". */
export const AUTH_ERRORS: ReadonlySet<string> = new Set([
  'invalid_auth', 'not_authed', 'token_revoked', 'token_expired', 'account_inactive',
  'user_removed_from_team', 'team_disabled', 'not_allowed_token_type',
]);

/** This message can never be delivered as addressed (retrying cannot help). */
const PERMANENT_ERRORS: ReadonlySet<string> = new Set([
  'channel_not_found', 'not_in_channel', 'is_archived', 'msg_too_long', 'no_text', 'restricted_action',
  'cannot_reply_to_message', 'user_not_in_channel', 'invalid_blocks', 'missing_scope', 'ekm_access_denied',
  'team_access_not_granted', 'invalid_arguments',
]);

/** Network failures that prove the request never reached Slack. */
const NOT_SENT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH']);

const HINTS: Record<string, string> = {
  invalid_auth: 'the bot token is not valid: copy the Bot User OAuth Token (xoxb-…) again and run `bulwark secret add slack.bot_token`',
  not_authed: 'no token was sent: store the bot token with `bulwark secret add slack.bot_token`',
  token_revoked: 'the token was revoked (app uninstalled or token rotated): reinstall the app to the workspace and store the new token with `bulwark secret add slack.bot_token`',
  token_expired: 'the token expired (token rotation is on): turn rotation off for this app or store a fresh token',
  account_inactive: 'the bot user or workspace was deactivated: reinstall the app and store the new token',
  not_allowed_token_type: 'Socket Mode needs the app-level token (xapp-…, scope connections:write) in slack.app_token, and the bot token (xoxb-…) in slack.bot_token',
  not_in_channel: 'invite the bot to the channel (/invite @YourBot)',
  missing_scope: 'add the missing OAuth scope in the app settings (see the Slack section of the README) and reinstall the app',
};

/** The Slack error code of a platform error (`{ok: false, error}`), if it is one. */
export function platformErrorCode(err: unknown): string | undefined {
  const e = err as { code?: string; data?: { error?: unknown } };
  return e?.code === webApi.ErrorCode.PlatformError && typeof e.data?.error === 'string' ? e.data.error : undefined;
}

export function isAuthError(err: unknown): boolean {
  const code = platformErrorCode(err);
  return code !== undefined && AUTH_ERRORS.has(code);
}

/** A message a person can act on, without the token (Slack's errors never contain it, but we say so explicitly). */
export function describeSlackError(err: unknown): string {
  const code = platformErrorCode(err);
  // missing_scope names the scope it needed (files:write for the agent's files, chat:write for text).
  const needed = (err as { data?: { needed?: unknown } }).data?.needed;
  if (code) return `Slack answered "${code}"${typeof needed === 'string' && /^[\w:.,-]{1,200}$/.test(needed) ? ` (needs ${needed})` : ''}${HINTS[code] ? `: ${HINTS[code]}` : ''}`;
  const e = err as { code?: string; statusCode?: number; retryAfter?: number; original?: Error; message?: string };
  if (e?.code === webApi.ErrorCode.RateLimitedError) return `Slack rate limit; retry after ${e.retryAfter} s`;
  if (e?.code === webApi.ErrorCode.HTTPError) return `Slack answered HTTP ${e.statusCode}`;
  if (e?.code === webApi.ErrorCode.RequestError) return `cannot reach Slack: ${requestCause(e.original)}`;
  return e?.message ?? String(err);
}

function requestCause(original: Error | undefined): string {
  const cause = (original as { cause?: { code?: string } } | undefined)?.cause;
  return cause?.code ?? original?.name ?? 'network error';
}

/**
 * The delivery error to throw for a failed send: RetryAfter for `ratelimited`, PermanentSendError
 * when retrying cannot help, SendOutcomeUnknown when the request may have arrived (timeout, reset),
 * a plain Error (retried with backoff) when it certainly did not.
 */
export function toDeliveryError(err: unknown): Error {
  const e = err as { code?: string; retryAfter?: number; original?: Error };
  if (e?.code === webApi.ErrorCode.RateLimitedError) return new RetryAfter(Math.max(1, e.retryAfter ?? 1) * 1000, 'Slack rate limit (ratelimited)');
  const code = platformErrorCode(err);
  if (code && PERMANENT_ERRORS.has(code)) return new PermanentSendError(describeSlackError(err));
  if (e?.code === webApi.ErrorCode.RequestError) {
    const cause = (e.original as { cause?: { code?: string } } | undefined)?.cause?.code;
    if (cause && NOT_SENT_CODES.has(cause)) return new Error(describeSlackError(err));
    return new SendOutcomeUnknown(describeSlackError(err));
  }
  return new Error(describeSlackError(err));
}
