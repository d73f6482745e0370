import { z } from 'zod';

/*
 * The Slack payloads the adapter acts on, validated at the edge. Anything that does not parse is
 * acknowledged and dropped (Slack would otherwise redeliver it), never thrown into Bolt.
 * Real examples: sample-messages.md.
 */

const slackId = z.string().regex(/^[A-Z0-9]{2,32}$/, 'a Slack id such as U0123ABCD');
/** Slack message timestamps ("1700000000.000100") are also message ids. */
const ts = z.string().regex(/^\d{1,12}\.\d{1,9}$/, 'a Slack timestamp such as 1700000000.000100');

/**
 * A file shared in a message. Lenient: a file Slack hides (mode "hidden_by_limit", Slack Connect's
 * "check_file_info") comes without URLs and is reported as refused instead of dropping the message.
 */
export const slackFileSchema = z.object({
  id: z.string().max(64).optional(),
  name: z.string().max(1024).optional(),
  title: z.string().max(1024).optional(),
  mimetype: z.string().max(256).optional(),
  size: z.number().int().nonnegative().optional(),
  url_private: z.string().max(4096).optional(),
  url_private_download: z.string().max(4096).optional(),
});
export type SlackFile = z.infer<typeof slackFileSchema>;
const files = z.array(slackFileSchema).max(100).optional();

/** A user-written message (message.im / message.channels / message.groups / message.mpim). */
export const messageEventSchema = z.object({
  type: z.literal('message'),
  subtype: z.string().optional(),
  channel: slackId,
  channel_type: z.enum(['im', 'channel', 'group', 'mpim', 'app_home']).optional(),
  user: slackId.optional(),
  bot_id: z.string().optional(),
  text: z.string().max(100_000).default(''),
  ts,
  thread_ts: ts.optional(),
  parent_user_id: slackId.optional(),
  files,
});
export type MessageEvent = z.infer<typeof messageEventSchema>;

/** `app_mention`: the bot was @-mentioned in a channel it is in. */
export const appMentionEventSchema = z.object({
  type: z.literal('app_mention'),
  channel: slackId,
  user: slackId.optional(),
  bot_id: z.string().optional(),
  text: z.string().max(100_000).default(''),
  ts,
  thread_ts: ts.optional(),
  files,
});
export type AppMentionEvent = z.infer<typeof appMentionEventSchema>;

/** The `/bulwark` slash command (form fields). */
export const slashCommandSchema = z.object({
  command: z.string(),
  text: z.string().max(100_000).default(''),
  user_id: slackId,
  user_name: z.string().max(256).optional(),
  channel_id: slackId,
  trigger_id: z.string().min(1).max(256),
});
export type SlashCommand = z.infer<typeof slashCommandSchema>;

/** Message subtypes written by a person; every other subtype (edits, deletes, joins, bots) is ignored. */
export const USER_SUBTYPES = new Set(['file_share', 'thread_broadcast', 'me_message']);

/*
 * Where a reply goes, encoded in the contract's chatId (which is also the conversation key):
 *   D123                 a DM, top level: the whole DM is one conversation
 *   C123/1700000000.1    a thread (channel or DM): replies go into it; a thread is a conversation
 *   C123/@U456           a slash command used in a channel: answered privately (ephemeral) to U456
 */
export type SlackTarget =
  | { kind: 'channel'; channel: string; threadTs?: string }
  | { kind: 'ephemeral'; channel: string; user: string };

export function chatIdFor(t: SlackTarget): string {
  if (t.kind === 'ephemeral') return `${t.channel}/@${t.user}`;
  return t.threadTs ? `${t.channel}/${t.threadTs}` : t.channel;
}

const chatIdSchema = z.string().regex(/^([A-Z0-9]{2,32})(?:\/(@[A-Z0-9]{2,32}|\d{1,12}\.\d{1,9}))?$/);

/** Undefined when the chatId is not one this adapter produced. */
export function parseChatId(chatId: string): SlackTarget | undefined {
  const m = chatIdSchema.safeParse(chatId);
  if (!m.success) return undefined;
  const [channel, rest] = chatId.split('/') as [string, string | undefined];
  if (!rest) return { kind: 'channel', channel };
  if (rest.startsWith('@')) return { kind: 'ephemeral', channel, user: rest.slice(1) };
  return { kind: 'channel', channel, threadTs: rest };
}
