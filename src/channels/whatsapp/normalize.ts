import { z } from 'zod';
import type { Addressing } from '../access.js';

/*
 * A whatsapp-web.js Message → what access control and the Inbox need. The fields are copied out of
 * the Message (fromMessage in index.ts) and validated here; anything that does not parse is dropped.
 *
 * Ids ("JIDs"): a person is 15551234567@c.us (phone number) or 1234567890@lid (WhatsApp's privacy id,
 * used more and more in groups), a group is 1203630...@g.us. Status updates come from
 * status@broadcast, channels from …@newsletter; neither is a conversation with the bot.
 */

export const WHATSAPP_LIMIT = 4000;

const jid = z.string().regex(/^[\w.:-]{1,80}@(c\.us|g\.us|lid|s\.whatsapp\.net|broadcast|newsletter)$/, 'a WhatsApp id such as 15551234567@c.us');

/** Message types that carry text written by a person (media carry it as a caption). */
const TEXT_TYPES = new Set(['chat', 'image', 'video', 'document']);

export const incomingSchema = z.object({
  id: z.string().min(1).max(256),
  fromMe: z.boolean(),
  from: jid,
  to: jid.optional(),
  /** The sender inside a group. */
  author: jid.optional(),
  body: z.string().max(100_000),
  type: z.string().max(64),
  isStatus: z.boolean(),
  broadcast: z.boolean(),
  mentionedIds: z.array(z.string().max(128)).max(1000),
  /** Author of the quoted message when this one is a reply. */
  quotedParticipant: z.string().max(128).optional(),
  senderName: z.string().max(256).optional(),
  hasMedia: z.boolean(),
  /** A document's file name and the media's declared size (checked before the download). */
  mediaName: z.string().max(1024).optional(),
  mediaSize: z.number().int().nonnegative().optional(),
});
export type Incoming = z.infer<typeof incomingSchema>;

export interface WhatsAppIncoming {
  messageId: string;
  chatId: string;
  chatType: 'dm' | 'group';
  groupId?: string;
  addressing: Addressing;
  senderId: string;
  senderName?: string;
  text: string;
  /** The message carries media (fetched by the adapter only once the sender is admitted). */
  media?: { type: string; name?: string; size?: number };
}

export type Normalized = { ok: true; msg: WhatsAppIncoming } | { ok: false; reason: string };
const drop = (reason: string): Normalized => ({ ok: false, reason });

/** "15551234567@c.us" → "15551234567": how a mention of that id is written in the text. */
const userPart = (id: string) => id.split('@')[0]!.split(':')[0]!;

/** Removes "@<number>" mentions of the bot itself; other mentions stay readable. */
export function stripOwnMentions(body: string, ownIds: ReadonlySet<string>): string {
  let text = body;
  for (const id of ownIds) text = text.split(`@${userPart(id)}`).join('');
  return text.replace(/[ \t]{2,}/g, ' ').trim();
}

/**
 * `ownIds` are the linked account's ids (phone JID and, once known, its LID): a mention of either in
 * a group addresses the bot. There is no @everyone on WhatsApp to guard against, and no bot flag:
 * every sender is a person as far as the API says.
 */
export function normalizeMessage(raw: unknown, ownIds: ReadonlySet<string>): Normalized {
  const parsed = incomingSchema.safeParse(raw);
  if (!parsed.success) return drop(`malformed message: ${parsed.error.issues[0]?.path.join('.')} ${parsed.error.issues[0]?.message}`);
  const m = parsed.data;
  if (m.isStatus || m.broadcast || /@(broadcast|newsletter)$/.test(m.from)) return drop('status, broadcast or channel post');
  if (!TEXT_TYPES.has(m.type)) return drop(`message type ${m.type}`);
  const isGroup = m.from.endsWith('@g.us');
  const senderId = isGroup ? m.author : m.from;
  if (!senderId) return drop('group message without an author');
  const fromSelf = m.fromMe || ownIds.has(senderId);
  const mentioned = m.mentionedIds.some((id) => ownIds.has(id));
  const replyToBot = m.quotedParticipant !== undefined && ownIds.has(m.quotedParticipant);
  const text = stripOwnMentions(m.body, ownIds);
  if (!text && !m.hasMedia) return drop('empty message');
  const chatType = isGroup ? 'group' : 'dm';
  return {
    ok: true,
    msg: {
      messageId: m.id,
      chatId: m.from,
      chatType,
      ...(isGroup ? { groupId: m.from } : {}),
      addressing: { chatType, groupId: isGroup ? m.from : undefined, senderId, senderIsBot: false, fromSelf, mentioned, replyToBot, isCommand: false },
      senderId,
      ...(m.senderName ? { senderName: m.senderName } : {}),
      text,
      ...(m.hasMedia ? { media: { type: m.type, ...(m.mediaName ? { name: m.mediaName } : {}), ...(m.mediaSize !== undefined ? { size: m.mediaSize } : {}) } } : {}),
    },
  };
}
