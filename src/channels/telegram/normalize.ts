import { z } from 'zod';
import type { IncomingChat } from '../chat.js';

/*
 * Telegram Update → IncomingChat. Only the fields we use are validated (the Bot API adds fields all
 * the time, so objects are loose); anything malformed is dropped by the caller with a log line.
 */

const user = z.looseObject({ id: z.number().int(), is_bot: z.boolean(), first_name: z.string().max(1024), last_name: z.string().max(1024).optional(), username: z.string().max(64).optional() });
const entity = z.looseObject({ type: z.string().max(64), offset: z.number().int().nonnegative(), length: z.number().int().nonnegative(), user: user.optional() });
export const messageSchema = z.looseObject({
  message_id: z.number().int(),
  message_thread_id: z.number().int().optional(),
  is_topic_message: z.boolean().optional(),
  from: user.optional(),
  chat: z.looseObject({ id: z.number().int(), type: z.enum(['private', 'group', 'supergroup', 'channel']), is_forum: z.boolean().optional() }),
  date: z.number().int(),
  text: z.string().max(100_000).optional(),
  caption: z.string().max(100_000).optional(),
  entities: z.array(entity).max(1000).optional(),
  caption_entities: z.array(entity).max(1000).optional(),
  reply_to_message: z.looseObject({ message_id: z.number().int(), from: user.optional() }).optional(),
  photo: z.array(z.looseObject({ file_id: z.string().min(1).max(512), file_size: z.number().int().nonnegative().optional(), width: z.number().int().optional() })).max(20).optional(),
  document: z.looseObject({ file_id: z.string().min(1).max(512), file_name: z.string().max(512).optional(), file_size: z.number().int().nonnegative().optional() }).optional(),
});
export type TelegramMessage = z.infer<typeof messageSchema>;

/** A button press. `from` is the user Telegram authenticated; `data` is what we put on the button (≤ 64 bytes). */
export const callbackQuerySchema = z.looseObject({
  id: z.string().min(1).max(256),
  from: user,
  message: z.looseObject({ message_id: z.number().int(), chat: messageSchema.shape.chat, message_thread_id: z.number().int().optional(), is_topic_message: z.boolean().optional() }).optional(),
  data: z.string().max(64).optional(),
});
export type TelegramCallbackQuery = z.infer<typeof callbackQuerySchema>;

/** The updates we ask Telegram for (getUpdates and setWebhook). */
export const ALLOWED_UPDATES: Array<'message' | 'callback_query'> = ['message', 'callback_query'];

export const updateSchema = z.looseObject({
  update_id: z.number().int().nonnegative(),
  message: messageSchema.optional(),
  edited_message: z.unknown().optional(),
  callback_query: callbackQuerySchema.optional(),
});
export type TelegramUpdate = z.infer<typeof updateSchema>;

/** grammY's Node build types its signal with the abort-controller package; Node's own is the same at runtime. */
export const grammySignal = (s: AbortSignal) => s as unknown as Parameters<import('grammy').Api['getMe']>[0];

export interface BotIdentity { id: number; username: string }

/** "-100123" or "-100123/45" (forum topic) → the Bot API's chat_id and message_thread_id. */
export function parseChatId(chatId: string): { chat_id: number; message_thread_id?: number } {
  const [chat, thread] = chatId.split('/');
  return { chat_id: Number(chat), ...(thread ? { message_thread_id: Number(thread) } : {}) };
}

/** The platform message id of a Telegram message: message_id is unique per chat only. */
export const telegramMessageId = (chatId: number, messageId: number) => `${chatId}/${messageId}`;

/** A file to fetch (after access control) with getFile. */
export interface FileRef { fileId: string; name?: string | undefined; size?: number | undefined }

export type Normalized =
  | { kind: 'message'; chat: IncomingChat; command?: string | undefined; file?: FileRef | undefined }
  | { kind: 'skip'; reason: string };

/**
 * A command addressed to us: "/help" or "/help@ourbot" at the very start. "/help@otherbot" is for
 * another bot in the same group and not ours.
 */
function commandOf(m: TelegramMessage, bot: BotIdentity): string | undefined {
  const text = m.text ?? '';
  const first = m.entities?.find((e) => e.type === 'bot_command' && e.offset === 0);
  if (!first) return undefined;
  const [cmd, target] = text.slice(1, first.length).split('@');
  if (target && target.toLowerCase() !== bot.username.toLowerCase()) return undefined;
  return cmd?.toLowerCase();
}

export function normalizeUpdate(u: TelegramUpdate, bot: BotIdentity, receivedAt = Date.now()): Normalized {
  const m = u.message;
  if (!m) return { kind: 'skip', reason: u.edited_message ? 'edit (not a new message)' : 'not a message update' };
  if (m.chat.type === 'channel') return { kind: 'skip', reason: 'channel post' };
  if (!m.from) return { kind: 'skip', reason: 'no sender (anonymous admin or channel)' };
  // The largest photo size (Telegram lists several), or the document.
  const photo = m.photo?.length ? [...m.photo].sort((a, b) => (b.file_size ?? 0) - (a.file_size ?? 0))[0] : undefined;
  const file: FileRef | undefined = m.document ? { fileId: m.document.file_id, name: m.document.file_name, size: m.document.file_size }
    : photo ? { fileId: photo.file_id, size: photo.file_size } : undefined;
  const text = m.text ?? m.caption ?? (file ? '' : undefined);
  if (text === undefined || (text.trim() === '' && !file)) return { kind: 'skip', reason: 'no text and no photo or document (stickers, voice, … are not read)' };
  const entities = m.text !== undefined ? m.entities ?? [] : m.caption_entities ?? [];
  const handle = `@${bot.username}`.toLowerCase();
  const mentionEntities = entities.filter((e) => (e.type === 'mention' && text.slice(e.offset, e.offset + e.length).toLowerCase() === handle) || (e.type === 'text_mention' && e.user?.id === bot.id));
  const command = commandOf(m, bot);
  // Strip our @handle from the text the agent reads (back to front so offsets stay valid).
  let clean = text;
  for (const e of [...mentionEntities].filter((x) => x.type === 'mention').sort((a, b) => b.offset - a.offset)) clean = clean.slice(0, e.offset) + clean.slice(e.offset + e.length);
  if (command) clean = clean.replace(new RegExp(`^/${command}@${bot.username}`, 'i'), `/${command}`);
  const topic = m.chat.is_forum && m.is_topic_message && m.message_thread_id !== undefined ? m.message_thread_id : undefined;
  const name = [m.from.first_name, m.from.last_name].filter(Boolean).join(' ') || m.from.username;
  return {
    kind: 'message',
    command,
    file,
    chat: {
      accountId: String(bot.id),
      chatId: topic !== undefined ? `${m.chat.id}/${topic}` : String(m.chat.id),
      messageId: telegramMessageId(m.chat.id, m.message_id),
      chatType: m.chat.type === 'private' ? 'dm' : 'group',
      groupId: String(m.chat.id),
      sender: { id: String(m.from.id), name, isBot: m.from.is_bot },
      fromSelf: m.from.id === bot.id,
      mentioned: mentionEntities.length > 0,
      replyToBot: m.reply_to_message?.from?.id === bot.id,
      isCommand: command !== undefined,
      text: clean.trim() || text.trim(),
      receivedAt,
    },
  };
}
