import type { Api } from 'grammy';
import type { ChatCore } from '../chat.js';
import { backoffMs, sleep } from '../connection.js';
import { CONFLICT, classifyPollError, TOKEN_REJECTED } from './errors.js';
import { ALLOWED_UPDATES, grammySignal, type BotIdentity } from './normalize.js';

/*
 * Our own getUpdates loop rather than bot.start(): the offset lives in Redis and moves past an
 * update only after the Inbox took it, so a restart neither loses an update (it is fetched again and
 * deduped by message id) nor replays an old one (Telegram forgets updates below the offset).
 *
 * Status: "connected" only after a getUpdates call returned. The first poll after (re)connecting
 * uses timeout 0, so the state is known at once instead of after one long-poll period.
 * Permanent errors: 401 → error, loop ends; 409 (another poller or a webhook) → error, one try per
 * minute (the other program may go away); nothing spins.
 */

export const offsetKey = (botId: number) => `bulwark:telegram:${botId}:offset`;
const CONFLICT_RETRY_MS = 60_000;
const MAX_UPDATE_ATTEMPTS = 5;

export interface PollOptions {
  core: ChatCore;
  api: Api;
  bot: BotIdentity;
  timeoutS: number;
  signal: AbortSignal;
  handleUpdate(raw: unknown): Promise<void>;
}

export function startPolling(o: PollOptions): () => Promise<void> {
  const { core, api, bot, signal } = o;
  const key = offsetKey(bot.id);
  const loop = (async () => {
    let attempt = 0;
    let fresh = true;
    let webhookCleared = false;
    let failures: { id: unknown; n: number } = { id: undefined, n: 0 };
    while (!signal.aborted) {
      try {
        if (!webhookCleared) {
          // A leftover webhook makes getUpdates fail with 409; pending updates are kept.
          await api.deleteWebhook({ drop_pending_updates: false }, grammySignal(signal));
          webhookCleared = true;
        }
        const stored = await core.redis.get(key);
        const updates = await api.getUpdates({
          ...(stored ? { offset: Number(stored) } : {}),
          timeout: fresh ? 0 : o.timeoutS,
          allowed_updates: ALLOWED_UPDATES,
        }, grammySignal(signal));
        if (fresh || core.state.state !== 'connected') core.state.connected(`@${bot.username}, long polling`);
        fresh = false;
        attempt = 0;
        for (const u of updates as unknown[]) {
          const id = (u as { update_id?: unknown }).update_id;
          try {
            await o.handleUpdate(u);
          } catch (err) {
            // Retried from this update after a backoff (Redis down: as long as it takes). One that
            // keeps failing while Redis is fine would block the chat forever: it is skipped, loudly.
            const n = (failures.id === id ? failures.n : 0) + 1;
            failures = { id, n };
            if (n < MAX_UPDATE_ATTEMPTS || core.redis.status !== 'ready') throw err;
            core.deps.metrics.errors.inc({ where: 'telegram_update' });
            core.logger.error({ updateId: id, err: core.scrub((err as Error).message) }, `an update failed ${n} times; skipped`);
          }
          if (typeof id === 'number' && Number.isSafeInteger(id)) await core.redis.set(key, String(id + 1));
        }
      } catch (err) {
        if (signal.aborted) break;
        fresh = true;
        const f = classifyPollError(err);
        if (f.kind === 'token') { core.state.error(TOKEN_REJECTED); return; }
        if (f.kind === 'conflict') { core.state.error(CONFLICT); await sleep(CONFLICT_RETRY_MS, signal); continue; }
        if (f.kind === 'retry-after') { await sleep(f.ms, signal); continue; }
        core.state.disconnected(core.scrub(f.detail));
        await sleep(backoffMs(attempt++, 500, 30_000), signal);
      }
    }
  })();
  return async () => { await loop; };
}
