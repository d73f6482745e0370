import { appMentionEventSchema, chatIdFor, messageEventSchema, slashCommandSchema, USER_SUBTYPES, type SlackFile, type SlackTarget } from './types.js';
import { mentionsUser, slackToText } from './text.js';

/** Who this bot is (from auth.test): used to spot its own messages and mentions of it. */
export interface BotIdentity { userId: string; botId: string; teamId: string }

/** One Slack message, normalized for access control and the Inbox. */
export interface SlackIncoming {
  /** Stable across Slack's redeliveries and across the message + app_mention pair of one message. */
  messageId: string;
  chatId: string;
  target: SlackTarget;
  chatType: 'dm' | 'group';
  channel: string;
  /** The message's own ts (for a "working…" indicator next to it); absent for slash commands. */
  ts?: string;
  /** The thread the message is in, when it is a reply in one. */
  threadTs?: string;
  /** The author of the thread's first message (Slack sends it for replies). */
  parentUserId?: string;
  senderId: string;
  senderName?: string;
  senderIsBot: boolean;
  fromSelf: boolean;
  mentioned: boolean;
  isCommand: boolean;
  text: string;
  /** Files shared with the message (fetched by the adapter only once the sender is admitted). */
  files?: SlackFile[];
}

export type Normalized = { ok: true; msg: SlackIncoming } | { ok: false; reason: string };

const ignore = (reason: string): Normalized => ({ ok: false, reason });

/**
 * A `message` or `app_mention` event → SlackIncoming, or the reason it is dropped (malformed,
 * an edit/delete/join, no author). Pure: thread participation is looked up by the adapter.
 */
export function normalizeEvent(raw: unknown, bot: BotIdentity): Normalized {
  const type = typeof raw === 'object' && raw !== null ? (raw as { type?: unknown }).type : undefined;
  const parsed = type === 'app_mention' ? appMentionEventSchema.safeParse(raw) : messageEventSchema.safeParse(raw);
  if (!parsed.success) return ignore(`malformed ${String(type)} event: ${parsed.error.issues[0]?.path.join('.')} ${parsed.error.issues[0]?.message}`);
  const e = parsed.data;
  const subtype = 'subtype' in e ? e.subtype : undefined;
  const senderIsBot = Boolean(e.bot_id) || subtype === 'bot_message';
  if (subtype !== undefined && subtype !== 'bot_message' && !USER_SUBTYPES.has(subtype)) return ignore(`subtype ${subtype}`);
  const fromSelf = e.user === bot.userId || (e.bot_id !== undefined && e.bot_id === bot.botId);
  const senderId = e.user ?? e.bot_id;
  if (!senderId) return ignore('no author');

  const channelType = 'channel_type' in e ? e.channel_type : undefined;
  // app_mention carries no channel_type; D… ids are DMs, C…/G… are channels and group DMs.
  const isDm = channelType ? channelType === 'im' || channelType === 'app_home' : e.channel.startsWith('D');
  const inThread = e.thread_ts !== undefined && e.thread_ts !== e.ts;
  // A DM is one conversation unless the user opened a thread; in a channel every thread is one,
  // and a top-level message starts a thread on itself.
  const threadTs = isDm ? (inThread ? e.thread_ts : undefined) : (e.thread_ts ?? e.ts);
  const target: SlackTarget = threadTs ? { kind: 'channel', channel: e.channel, threadTs } : { kind: 'channel', channel: e.channel };
  return {
    ok: true,
    msg: {
      messageId: `${e.channel}:${e.ts}`,
      chatId: chatIdFor(target),
      target,
      chatType: isDm ? 'dm' : 'group',
      channel: e.channel,
      ts: e.ts,
      ...(inThread ? { threadTs: e.thread_ts! } : {}),
      ...('parent_user_id' in e && e.parent_user_id ? { parentUserId: e.parent_user_id } : {}),
      senderId,
      senderIsBot,
      fromSelf,
      mentioned: e.type === 'app_mention' || mentionsUser(e.text, bot.userId),
      isCommand: false,
      text: slackToText(e.text, bot.userId),
      ...(e.files?.length ? { files: e.files } : {}),
    },
  };
}

/**
 * The `/bulwark` slash command → SlackIncoming. In a DM it continues the DM conversation; in a
 * channel it is a private conversation of that user there, answered with ephemeral messages (the
 * command's text is not shown to the channel, so the answer is not either).
 */
export function normalizeCommand(raw: unknown): Normalized {
  const parsed = slashCommandSchema.safeParse(raw);
  if (!parsed.success) return ignore(`malformed slash command: ${parsed.error.issues[0]?.path.join('.')} ${parsed.error.issues[0]?.message}`);
  const c = parsed.data;
  const isDm = c.channel_id.startsWith('D');
  const target: SlackTarget = isDm ? { kind: 'channel', channel: c.channel_id } : { kind: 'ephemeral', channel: c.channel_id, user: c.user_id };
  return {
    ok: true,
    msg: {
      messageId: `cmd:${c.trigger_id}`,
      chatId: chatIdFor(target),
      target,
      chatType: isDm ? 'dm' : 'group',
      channel: c.channel_id,
      senderId: c.user_id,
      ...(c.user_name ? { senderName: c.user_name } : {}),
      senderIsBot: false,
      fromSelf: false,
      mentioned: false,
      isCommand: true,
      text: slackToText(c.text, ''),
    },
  };
}
