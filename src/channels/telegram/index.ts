import { timingSafeEqual, createHash } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { route } from '../../gateway/access.js';
import { Api, GrammyError, InputFile } from 'grammy';
import type { ApprovalRequest } from '../../approvals/types.js';
import { callbackData, outcomeText, ownerPromptText, parseCallbackData } from '../approvals.js';
import { splitEpoch, type ChatAdapter, type ChatCore, type ChatIO, type IncomingChat } from '../chat.js';
import type { OutboundMessage, OutgoingFile } from '../contract.js';
import type { Draft } from '../drafts.js';
import { backoffMs, sleep } from '../connection.js';
import { PermanentSendError } from '../delivery.js';
import { toTelegramHtml } from '../markdown.js';
import { classifyPollError, classifySendError, isParseError, TOKEN_REJECTED } from './errors.js';
import { ALLOWED_UPDATES, grammySignal, normalizeUpdate, parseChatId, updateSchema, type BotIdentity, type FileRef, type TelegramCallbackQuery } from './normalize.js';
import { AttachmentRefused, fetchCapped } from '../attachments.js';
import { receiveWithFiles, type InboundFile } from '../inbound-files.js';
import { startPolling } from './poll.js';

/*
 * Telegram through grammY's Api client. Long polling by default (our own getUpdates loop, so the
 * offset is stored in Redis and acknowledged only after the Inbox took the message); webhook mode
 * with the secret-token header as an option. Replies are HTML, chunked to 4096 characters; files the
 * agent sent follow the text as photos (JPEG/PNG/WebP) or documents, in the same chat and topic.
 */

export const TELEGRAM_LIMIT = 4096;
/** Sent with sendPhoto (shown inline, recompressed); GIFs and everything else go as documents (kept as is). */
const PHOTO_MIMES = new Set(['image/jpeg', 'image/png', 'image/webp']);
type TelegramConfig = ChatCore['deps']['channels']['telegram'];

export const COMMANDS = [
  { command: 'start', description: 'Say hello and show what I can do' },
  { command: 'help', description: 'How to talk to me' },
  { command: 'new', description: 'Start a fresh conversation' },
];
const HELP = 'I am your Bulwark assistant. Write to me like to a person. In groups, mention me or reply to my message.\n\n/new starts a fresh conversation (I forget this chat\'s history).\n\nOwners: /approve ID or /deny ID decides a request of mine for more access (or use the buttons in the message I send you).';

function apiFor(core: ChatCore, token: string, cfg: TelegramConfig): Api {
  return new Api(token, { ...(cfg.api_root ? { apiRoot: cfg.api_root.replace(/\/+$/, '') } : {}), timeoutSeconds: cfg.poll_timeout_s + 15 });
}

/** `bulwark channels test telegram`: getMe with the stored token. */
export async function probe(core: ChatCore): Promise<{ ok: boolean; detail: string }> {
  const token = await core.secret('telegram.token');
  if (!token) return { ok: false, detail: 'no token: run `bulwark secret add telegram.token` (paste the token from @BotFather)' };
  try {
    const me = await apiFor(core, token, core.config as TelegramConfig).getMe();
    return { ok: true, detail: `token works: the bot is @${me.username} (id ${me.id})` };
  } catch (err) {
    const f = classifyPollError(err);
    return { ok: false, detail: f.kind === 'token' ? TOKEN_REJECTED : core.scrub(f.kind === 'transient' ? f.detail : f.kind) };
  }
}

export async function createAdapter(core: ChatCore): Promise<ChatAdapter> {
  const cfg = core.config as TelegramConfig;
  const token = await core.secret('telegram.token');
  const webhookSecret = cfg.mode === 'webhook' ? await core.secret('telegram.webhook_secret') : undefined;
  const stopper = new AbortController();
  let bot: BotIdentity | undefined;
  let api: Api | undefined;
  let stopPolling: (() => Promise<void>) | undefined;
  // Telegram's preview fetcher would request any URL the agent writes (see link_previews in the config).
  const previews = { link_preview_options: { is_disabled: !cfg.link_previews } };
  const noPreview = { link_preview_options: { is_disabled: true } };

  const ioFor = (a: Api, chatId: string, replyTo: number): ChatIO => {
    const { chat_id, message_thread_id } = parseChatId(chatId);
    const thread = message_thread_id !== undefined ? { message_thread_id } : {};
    return {
      notice: (text) => a.sendMessage(chat_id, text, { ...thread, ...noPreview, reply_parameters: { message_id: replyTo, allow_sending_without_reply: true } }),
      typing: () => a.sendChatAction(chat_id, 'typing', thread),
    };
  };

  /** One update → Inbox. Throws only when the message could not be taken (Redis down): then it is not acknowledged. */
  async function handleUpdate(raw: unknown): Promise<void> {
    const parsed = updateSchema.safeParse(raw);
    if (!parsed.success) {
      core.deps.metrics.errors.inc({ where: 'telegram_payload' });
      core.logger.warn({ issue: parsed.error.issues[0]?.message, path: parsed.error.issues[0]?.path.join('.') }, 'malformed Telegram update dropped');
      return;
    }
    if (parsed.data.callback_query) { await handleCallback(parsed.data.callback_query); return; }
    const n = normalizeUpdate(parsed.data, bot!);
    if (n.kind === 'skip') { core.logger.debug({ updateId: parsed.data.update_id, reason: n.reason }, 'update skipped'); return; }
    const io = ioFor(api!, n.chat.chatId, Number(n.chat.messageId.split('/')[1]));
    if (n.command === 'start' || n.command === 'help' || n.command === 'new') {
      const admitted = await core.admit(n.chat, io);
      if (!('ok' in admitted)) return;
      if (n.command === 'new') {
        await core.newConversation(n.chat.accountId, n.chat.chatId);
        await io.notice('Started a new conversation: I no longer see what we said before in this chat.').catch(() => undefined);
      } else {
        await io.notice(HELP).catch(() => undefined);
      }
      return;
    }
    // Access control before any download: a stranger's upload is never fetched.
    await receiveWithFiles(core, n.chat satisfies IncomingChat, io, n.file ? [telegramFile(n.file)] : []);
  }

  /**
   * An Approve/Deny button press. The decider is `from`, the user Telegram authenticated; the
   * button only names the decision and the request. The gateway checks the rest and audits refusals.
   */
  async function handleCallback(q: TelegramCallbackQuery): Promise<void> {
    const pressed = parseCallbackData(q.data);
    const answer = (text: string, alert: boolean) => api!.answerCallbackQuery(q.id, { text: text.slice(0, 190), show_alert: alert }).catch((err: Error) => core.logger.warn({ err: core.scrub(err.message) }, 'answerCallbackQuery failed'));
    if (!pressed || !q.message) { await answer('This button does nothing.', false); return; }
    const m = q.message;
    const topic = m.is_topic_message && m.message_thread_id !== undefined ? `/${m.message_thread_id}` : '';
    const r = await core.decideApproval({
      accountId: String(bot!.id), chatId: `${m.chat.id}${topic}`, chatType: m.chat.type === 'private' ? 'dm' : 'group',
      sender: { id: String(q.from.id), isBot: q.from.is_bot },
    }, pressed.decision, pressed.id);
    await answer(outcomeText(r), !r.ok);
    // The owner's message shows the outcome and loses its buttons; a stranger's press changes nothing there.
    const settled = r.ok || (r.request !== undefined && r.request.state !== 'pending' && core.access.isOwner(String(q.from.id)));
    if (settled && r.request) {
      await api!.editMessageText(m.chat.id, m.message_id, ownerPromptText(r.request, outcomeText(r)), { ...noPreview, reply_markup: { inline_keyboard: [] } })
        .catch((err: Error) => core.logger.warn({ err: core.scrub(err.message) }, 'could not update the approval message'));
    }
  }

  /** One DM per owner (a user id is the DM's chat id) with the request and Approve/Deny buttons. */
  async function promptOwners(req: ApprovalRequest): Promise<void> {
    if (!api || !bot) throw new Error('the Telegram adapter is not connected yet');
    await core.promptEachOwner(req, /^\d{1,20}$/, async (owner) => {
      await api!.sendMessage(Number(owner), ownerPromptText(req), {
        ...noPreview,
        reply_markup: { inline_keyboard: [[{ text: 'Approve', callback_data: callbackData('approve', req.id) }, { text: 'Deny', callback_data: callbackData('deny', req.id) }]] },
      }).catch((err: unknown) => { throw classifySendError(err); });
    }, ' (they must have started a chat with the bot)');
  }

  /** getFile + download, capped and type-checked; a refusal becomes a line the agent can explain. */
  /** getFile + download (capped); the shared path checks the type and stores it sealed. */
  function telegramFile(f: FileRef): InboundFile {
    return {
      name: f.name, size: f.size,
      download: async () => {
        const info = await api!.getFile(f.fileId);
        if (!info.file_path || !/^[\w./-]{1,256}$/.test(info.file_path) || info.file_path.includes('..')) throw new AttachmentRefused('Telegram returned no usable file path');
        const root = (cfg.api_root ?? 'https://api.telegram.org').replace(/\/+$/, '');
        return fetchCapped(`${root}/file/bot${token}/${info.file_path}`);
      },
    };
  }

  async function connect(): Promise<void> {
    if (!token) { core.state.error('no bot token: run `bulwark secret add telegram.token` (the token from @BotFather), then restart'); return; }
    api = apiFor(core, token, cfg);
    for (let attempt = 0; !stopper.signal.aborted; attempt++) {
      try {
        const me = await api.getMe(grammySignal(stopper.signal));
        bot = { id: me.id, username: me.username };
        await api.setMyCommands(COMMANDS, undefined, grammySignal(stopper.signal)).catch((err: Error) => core.logger.warn({ err: core.scrub(err.message) }, 'setMyCommands failed'));
        break;
      } catch (err) {
        if (stopper.signal.aborted) return;
        const f = classifyPollError(err);
        if (f.kind === 'token') { core.state.error(TOKEN_REJECTED); return; }
        core.state.disconnected(core.scrub(f.kind === 'transient' ? f.detail : f.kind));
        await sleep(f.kind === 'retry-after' ? f.ms : backoffMs(attempt), stopper.signal);
      }
    }
    if (stopper.signal.aborted || !bot) return;
    if (cfg.mode === 'webhook') {
      if (!webhookSecret) { core.state.error('webhook mode needs a secret: run `bulwark secret add telegram.webhook_secret` (letters, digits, _ and -), then restart'); return; }
      if (cfg.webhook_url) await api.setWebhook(cfg.webhook_url, { secret_token: webhookSecret, allowed_updates: ALLOWED_UPDATES });
      core.state.connected(`@${bot.username}, webhook ${cfg.webhook_path}`);
      return;
    }
    stopPolling = startPolling({ core, api, bot, timeoutS: cfg.poll_timeout_s, signal: stopper.signal, handleUpdate });
  }

  const started = connect().catch((err: Error) => core.state.error(core.scrub(`could not start: ${err.message}`)));

  async function sendChunk(out: OutboundMessage, html: string, index: number): Promise<string> {
    if (!api) throw new Error('the Telegram adapter is not connected yet');
    const { chat_id, message_thread_id } = parseChatId(splitEpoch(out.chatId).chatId);
    const replyTo = index === 0 && out.replyTo?.includes('/') ? Number(out.replyTo.split('/')[1]) : undefined;
    const other = {
      parse_mode: 'HTML' as const,
      ...previews,
      ...(message_thread_id !== undefined ? { message_thread_id } : {}),
      ...(replyTo ? { reply_parameters: { message_id: replyTo, allow_sending_without_reply: true } } : {}),
    };
    try {
      return String((await api.sendMessage(chat_id, html, other)).message_id);
    } catch (err) {
      if (!isParseError(err)) throw classifySendError(err);
      core.logger.warn('Telegram could not parse our HTML; sending this chunk as plain text');
      const { parse_mode: _drop, ...plainOther } = other;
      try { return String((await api.sendMessage(chat_id, htmlToText(html), plainOther)).message_id); } catch (e) { throw classifySendError(e); }
    }
  }

  /**
   * One file of the reply, uploaded (multipart) to the chat and topic of the text. It quotes the
   * user's message only when the reply has no text (otherwise the first text chunk already does).
   * A photo Telegram will not take as a photo (dimensions, format) is sent again as a document.
   */
  async function sendFile(out: OutboundMessage, file: OutgoingFile): Promise<string> {
    if (!api) throw new Error('the Telegram adapter is not connected yet');
    const { chat_id, message_thread_id } = parseChatId(splitEpoch(out.chatId).chatId);
    const replyTo = out.text.trim() === '' && out.replyTo?.includes('/') ? Number(out.replyTo.split('/')[1]) : undefined;
    const other = {
      ...(message_thread_id !== undefined ? { message_thread_id } : {}),
      ...(replyTo ? { reply_parameters: { message_id: replyTo, allow_sending_without_reply: true } } : {}),
    };
    const asDocument = async () => String((await api!.sendDocument(chat_id, new InputFile(file.data, file.name), other)).message_id);
    try {
      if (!PHOTO_MIMES.has(file.mime)) return await asDocument();
      try {
        return String((await api.sendPhoto(chat_id, new InputFile(file.data, file.name), other)).message_id);
      } catch (err) {
        if (!(err instanceof GrammyError && err.error_code === 400 && /PHOTO|IMAGE/.test(err.description))) throw err;
        core.logger.warn({ file: file.id, err: err.description }, 'Telegram refused the image as a photo; sending it as a document');
        return await asDocument();
      }
    } catch (err) {
      throw classifySendError(err);
    }
  }

  /**
   * Replaces the text of a message we sent (the draft of a reply). Unchanged text counts as done; a
   * draft the user deleted, or one too old to edit, is replaced by a new message when `fallback` is
   * given (the final reply), and dropped otherwise.
   */
  async function editChunk(out: Pick<OutboundMessage, 'chatId'>, platformId: string, html: string, fallback?: () => Promise<string>): Promise<string> {
    if (!api) throw new Error('the Telegram adapter is not connected yet');
    const { chat_id } = parseChatId(splitEpoch(out.chatId).chatId);
    const edit = async (text: string, parse: boolean) => { await api!.editMessageText(chat_id, Number(platformId), text, { ...previews, ...(parse ? { parse_mode: 'HTML' as const } : {}) }); };
    try {
      await edit(html, true).catch(async (err: unknown) => {
        if (!isParseError(err)) throw err;
        await edit(htmlToText(html), false);
      });
      return platformId;
    } catch (err) {
      const description = err instanceof GrammyError ? err.description : '';
      if (/message is not modified/i.test(description)) return platformId;
      if (fallback && /message to edit not found|message can't be edited/i.test(description)) return fallback();
      throw classifySendError(err);
    }
  }

  return {
    name: core.name,
    status: () => core.state.status(),
    async send(out) {
      await core.deliver(out, {
        limit: TELEGRAM_LIMIT, convert: toTelegramHtml,
        sendChunk: (html, i) => sendChunk(out, html, i),
        sendFile: (file) => sendFile(out, file),
        ...(cfg.stream_replies ? { editChunk: (id: string, html: string) => editChunk(out, id, html, () => sendChunk(out, html, 0)) } : {}),
      });
    },
    ...(cfg.stream_replies ? {
      async draft(d: Draft) {
        const out = { ...d, text: d.text, seq: 0 };
        await core.deliverDraft(d, { limit: TELEGRAM_LIMIT, convert: toTelegramHtml, send: (html) => sendChunk(out, html, 0), edit: (id, html) => editChunk(out, id, html) });
      },
    } : {}),
    promptOwners,
    registerRoutes(app: FastifyInstance) {
      if (cfg.mode !== 'webhook') return;
      const expected = webhookSecret ? createHash('sha256').update(webhookSecret).digest() : undefined;
      app.post(cfg.webhook_path, route('signed'), async (req, reply) => {
        const got = req.headers['x-telegram-bot-api-secret-token'];
        const ok = expected && typeof got === 'string' && timingSafeEqual(createHash('sha256').update(got).digest(), expected);
        if (!ok) return reply.code(401).send({ error: 'missing or wrong X-Telegram-Bot-Api-Secret-Token' });
        if (!bot) return reply.code(503).send({ error: 'the Telegram adapter is not connected yet' });
        // A failure to take the update answers 500, so Telegram redelivers it (the Inbox dedupes).
        await handleUpdate(req.body);
        return { ok: true };
      });
    },
    async stop() {
      stopper.abort();
      await started;
      await stopPolling?.();
      core.close();
    },
  };
}

/** Our own HTML as plain text, for the fallback. */
function htmlToText(html: string): string {
  return html.replace(/<[^>]+>/g, '').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&amp;/g, '&');
}
