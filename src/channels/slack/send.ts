import type { webApi } from '@slack/bolt';
import { splitEpoch, type ChatCore } from '../chat.js';
import type { OutboundMessage, OutgoingFile } from '../contract.js';
import { PermanentSendError, SendOutcomeUnknown } from '../delivery.js';
import { toSlackMrkdwn } from '../markdown.js';
import { describeSlackError, isAuthError, platformErrorCode, toDeliveryError } from './errors.js';
import { parseChatId, type SlackTarget } from './types.js';

/** Slack renders ~4,000 characters readably (the hard cap is 40,000); chunks stay under it. */
export const SLACK_CHUNK_LIMIT = 3900;
export const WORKING_TEXT = '_working…_';
const PLACEHOLDER_TTL_S = 3600;
const LINK = /(https?|ftp|mailto):/i;

type WebClient = InstanceType<typeof webApi.WebClient>;

/*
 * "working…": Slack has no typing action for bots. When a message is accepted, the bot posts a
 * "working…" message where the reply will go; the reply's first chunk replaces it (chat.update) and
 * further chunks follow as new messages. The placeholder's ts is kept in Redis under the inbound
 * message id, so whichever gateway delivers the reply (even after a restart) finds it. Slash
 * commands have none: their immediate acknowledgement says "working on it".
 */
const placeholderKey = (accountId: string, inboundId: string) => `bulwark:slack:working:${accountId}:${inboundId}`;

export class SlackSender {
  /** Placeholders being posted in this process, so a fast reply waits for (and reuses) its own. */
  private readonly posting = new Map<string, Promise<string | undefined>>();

  constructor(private readonly core: ChatCore, private readonly web: WebClient, private readonly onAuthError: (detail: string) => void) {}

  /** Posts the "working…" message once per inbound message (the core calls typing() repeatedly). */
  working(accountId: string, inboundId: string, target: SlackTarget): Promise<unknown> {
    const key = placeholderKey(accountId, inboundId);
    if (target.kind !== 'channel' || this.posting.has(key)) return Promise.resolve();
    const p = (async () => {
      const r = await this.web.chat.postMessage({ channel: target.channel, text: WORKING_TEXT, ...(target.threadTs ? { thread_ts: target.threadTs } : {}) });
      if (r.ts) await this.core.redis.set(key, r.ts, 'EX', PLACEHOLDER_TTL_S);
      return r.ts;
    })().catch((err: unknown) => {
      this.core.logger.debug({ err: this.core.scrub(describeSlackError(err)) }, 'could not post the "working…" message');
      return undefined;
    });
    this.posting.set(key, p);
    // Replies that never come (a failed turn) must not grow the map forever.
    if (this.posting.size > 10_000) this.posting.delete(this.posting.keys().next().value!);
    return p;
  }

  /** Plain text (no markup) straight to a chat: the pairing prompt. */
  async notice(target: SlackTarget, text: string): Promise<void> {
    if (target.kind === 'ephemeral') {
      await this.web.chat.postEphemeral({ channel: target.channel, user: target.user, text });
      return;
    }
    await this.web.chat.postMessage({ channel: target.channel, text, mrkdwn: false, ...(target.threadTs ? { thread_ts: target.threadTs } : {}) });
  }

  /** Delivers one reply through the core's ledger (no chunk is ever sent twice). */
  async send(out: OutboundMessage): Promise<void> {
    // The core appends "~N" to the chat id after `/bulwark new`; Slack only knows the chat itself.
    const target = parseChatId(splitEpoch(out.chatId).chatId);
    if (!target) throw new PermanentSendError(`"${out.chatId}" is not a Slack chat id (CHANNEL, CHANNEL/THREAD_TS or CHANNEL/@USER)`);
    const key = out.replyTo ? placeholderKey(out.accountId, out.replyTo) : undefined;
    if (key) await this.posting.get(key);
    const placeholder = key ? await this.core.redis.get(key) : null;

    try {
      await this.deliver(out, target, key, placeholder);
    } finally {
      // After deliver: the core has stopped the typing repeats, so no second placeholder can start.
      if (key) this.posting.delete(key);
    }
  }

  private async deliver(out: OutboundMessage, target: SlackTarget, key: string | undefined, placeholder: string | null): Promise<void> {
    await this.core.deliver(out, {
      limit: SLACK_CHUNK_LIMIT,
      convert: toSlackMrkdwn,
      sendChunk: async (text, i) => {
        try {
          if (i === 0 && placeholder && target.kind === 'channel') {
            // chat.update cannot turn unfurling off, so a chunk with a link replaces the placeholder
            // by a fresh post (unfurl_links: false) instead.
            if (LINK.test(text)) await this.deletePlaceholder(target.channel, placeholder);
            else if (await this.replacePlaceholder(target.channel, placeholder, text)) { await this.core.redis.del(key!); return placeholder; }
            await this.core.redis.del(key!);
          }
          return await this.post(target, text);
        } catch (err) {
          if (isAuthError(err)) this.onAuthError(describeSlackError(err));
          throw toDeliveryError(err);
        }
      },
      sendFile: async (file) => {
        try {
          return await this.upload(target, file);
        } catch (err) {
          if (isAuthError(err)) this.onAuthError(describeSlackError(err));
          throw toDeliveryError(err);
        }
      },
    });
  }

  /**
   * One file of the reply, shared where the text went (the thread included). files.uploadV2 is
   * getUploadURLExternal → POST of the bytes → completeUploadExternal; only the last step shares the
   * file, so a failure before it leaves nothing visible. Needs the files:write scope. Files cannot be
   * ephemeral: a private slash-command answer gets a short note instead of the file.
   */
  private async upload(target: SlackTarget, file: OutgoingFile): Promise<string> {
    if (target.kind === 'ephemeral') {
      const r = await this.web.chat.postEphemeral({ channel: target.channel, user: target.user, text: `(The file "${file.name}" cannot be shown in a private answer here: ask me in a DM to get it.)` });
      return r.message_ts ?? 'ephemeral';
    }
    const what = { file: file.data, filename: file.name, title: file.name };
    const r = await (target.threadTs
      ? this.web.files.uploadV2({ ...what, channel_id: target.channel, thread_ts: target.threadTs })
      : this.web.files.uploadV2({ ...what, channel_id: target.channel })) as { files?: Array<{ files?: Array<{ id?: string }> }> };
    const id = r.files?.[0]?.files?.[0]?.id;
    if (!id) throw new SendOutcomeUnknown('files.completeUploadExternal answered without a file id');
    return id;
  }

  private async post(target: SlackTarget, text: string): Promise<string> {
    if (target.kind === 'ephemeral') {
      const r = await this.web.chat.postEphemeral({ channel: target.channel, user: target.user, text });
      return r.message_ts ?? 'ephemeral';
    }
    // No link unfurling (unless the owner set link_previews): a tricked model could put data into a
    // URL that Slack's unfurler would fetch.
    const unfurl = this.core.config.link_previews;
    const r = await this.web.chat.postMessage({
      channel: target.channel, text, unfurl_links: unfurl, unfurl_media: unfurl,
      ...(target.threadTs ? { thread_ts: target.threadTs } : {}),
    });
    if (!r.ts) throw new Error('chat.postMessage answered without a message ts');
    return r.ts;
  }

  private async deletePlaceholder(channel: string, ts: string): Promise<void> {
    await this.web.chat.delete({ channel, ts }).catch((err: unknown) => {
      this.core.logger.debug({ err: this.core.scrub(describeSlackError(err)) }, 'could not delete the "working…" message');
    });
  }

  /** False when the placeholder is gone (deleted by someone): the chunk is then posted anew. */
  private async replacePlaceholder(channel: string, ts: string, text: string): Promise<boolean> {
    try {
      await this.web.chat.update({ channel, ts, text });
      return true;
    } catch (err) {
      const code = platformErrorCode(err);
      if (code === 'message_not_found' || code === 'cant_update_message' || code === 'edit_window_closed') return false;
      throw err;
    }
  }
}
