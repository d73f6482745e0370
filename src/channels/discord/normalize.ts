import type { Addressing } from '../access.js';
import { INTERACTION_PREFIX, incomingCommandSchema, incomingMessageSchema, SLASH_COMMAND, type IncomingCommand, type IncomingMessage } from './types.js';

/** Who the bot is in Discord: its user id, and its managed role per guild (the "@Bulwark" role). */
export interface BotIdentity {
  userId: string;
  /** guild id → the bot's managed role id in that guild. */
  roleIn(guildId: string): string | undefined;
}

/** One Discord message or slash command, normalized for access control and the Inbox. */
export interface DiscordIncoming {
  messageId: string;
  /** The Discord channel the conversation lives in (a DM, a text channel, or a thread). */
  chatId: string;
  chatType: 'dm' | 'group';
  /** What the `groups` enable list is matched against: the channel, or a thread's parent channel. */
  groupId?: string;
  guildId?: string;
  addressing: Addressing;
  senderId: string;
  senderName: string;
  text: string;
  /** Files on the message (fetched by the adapter only once the sender is admitted). */
  attachments?: IncomingMessage['attachments'];
  /** Set for slash commands: answered through the interaction, not the channel. */
  interaction?: { id: string; applicationId: string; token: string };
}

export type Normalized = { ok: true; msg: DiscordIncoming } | { ok: false; reason: string };

const drop = (reason: string): Normalized => ({ ok: false, reason });

/**
 * The message text as the agent should read it: the bot's own mention removed, other user mentions
 * turned into @names (the model cannot resolve ids, and an id it echoes back would ping someone).
 */
export function cleanText(m: Pick<IncomingMessage, 'content' | 'mentionedUsers'>, bot: { userId: string; roleId?: string | undefined }): string {
  const names = new Map(m.mentionedUsers.map((u) => [u.id, u.name]));
  return m.content
    .replace(new RegExp(`<@!?${bot.userId}>`, 'g'), '')
    .replace(bot.roleId ? new RegExp(`<@&${bot.roleId}>`, 'g') : /(?!)/, '')
    .replace(/<@!?(\d{15,22})>/g, (whole, id: string) => (names.has(id) ? `@${names.get(id)}` : whole))
    .replace(/[ \t]{2,}/g, ' ')
    .trim();
}

/** A discord.js message (already copied into a plain record) → DiscordIncoming, or why it is dropped. */
export function normalizeMessage(raw: unknown, bot: BotIdentity): Normalized {
  const parsed = incomingMessageSchema.safeParse(raw);
  if (!parsed.success) return drop(`malformed message: ${parsed.error.issues[0]?.path.join('.')} ${parsed.error.issues[0]?.message}`);
  const m = parsed.data;
  if (m.system) return drop('system message');
  const roleId = m.guildId ? bot.roleIn(m.guildId) : undefined;
  // Only the bot's own user or its managed role count. @everyone/@here set mentionsEveryone, which is
  // deliberately ignored: a broadcast is not a question to the bot.
  const mentioned = m.mentionedUsers.some((u) => u.id === bot.userId) || (roleId !== undefined && m.mentionedRoles.includes(roleId));
  const chatType = m.isDm || !m.guildId ? 'dm' : 'group';
  const groupId = chatType === 'group' ? (m.isThread && m.parentId ? m.parentId : m.channelId) : undefined;
  const text = cleanText(m, { userId: bot.userId, roleId });
  if (!text && m.attachments.length === 0) return drop('empty message');
  return {
    ok: true,
    msg: {
      messageId: m.id,
      chatId: m.channelId,
      chatType,
      ...(groupId ? { groupId } : {}),
      ...(m.guildId ? { guildId: m.guildId } : {}),
      addressing: {
        chatType, groupId, senderId: m.author.id,
        senderIsBot: m.author.bot || m.webhookId !== null,
        fromSelf: m.author.id === bot.userId,
        mentioned,
        replyToBot: m.repliedToUserId === bot.userId,
        isCommand: false,
      },
      senderId: m.author.id,
      senderName: m.author.name,
      text,
      ...(m.attachments.length ? { attachments: m.attachments } : {}),
    },
  };
}

/** `/bulwark ask text:…` → DiscordIncoming. A command is addressed to the bot by definition. */
export function normalizeCommand(raw: unknown): Normalized {
  const parsed = incomingCommandSchema.safeParse(raw);
  if (!parsed.success) return drop(`malformed interaction: ${parsed.error.issues[0]?.path.join('.')} ${parsed.error.issues[0]?.message}`);
  const c: IncomingCommand = parsed.data;
  if (c.commandName !== SLASH_COMMAND.name || c.subcommand !== 'ask') return drop(`unknown command /${c.commandName} ${c.subcommand ?? ''}`.trim());
  const text = (c.text ?? '').trim();
  if (!text) return drop('empty command');
  const chatType = c.guildId ? 'group' : 'dm';
  const groupId = chatType === 'group' ? (c.parentId ?? c.channelId) : undefined;
  return {
    ok: true,
    msg: {
      messageId: `${INTERACTION_PREFIX}${c.id}`,
      chatId: c.channelId,
      chatType,
      ...(groupId ? { groupId } : {}),
      ...(c.guildId ? { guildId: c.guildId } : {}),
      addressing: { chatType, groupId, senderId: c.user.id, senderIsBot: c.user.bot, fromSelf: false, mentioned: false, replyToBot: false, isCommand: true },
      senderId: c.user.id,
      senderName: c.user.name,
      text,
      interaction: { id: c.id, applicationId: c.applicationId, token: c.token },
    },
  };
}
