import { z } from 'zod';

/*
 * What the Discord adapter reads from discord.js, as plain records validated at the edge. discord.js
 * parses the gateway JSON into classes; `fromMessage` / `fromInteraction` in index.ts copy the few
 * fields we act on into these records, and anything that does not parse is dropped, never thrown.
 * Real payloads: sample-messages.md.
 */

export const snowflake = z.string().regex(/^\d{15,22}$/, 'a Discord snowflake id');

/** Discord's limit for one message's content. */
export const DISCORD_LIMIT = 2000;

export const incomingMessageSchema = z.object({
  id: snowflake,
  channelId: snowflake,
  /** Null in DMs. */
  guildId: snowflake.nullable(),
  /** The parent text channel when the message is in a thread (a thread is its own conversation). */
  parentId: snowflake.nullable(),
  isThread: z.boolean(),
  isDm: z.boolean(),
  /** Join messages, pins, boosts…: never user input. */
  system: z.boolean(),
  webhookId: snowflake.nullable(),
  author: z.object({ id: snowflake, name: z.string().max(256), bot: z.boolean() }),
  content: z.string().max(100_000),
  mentionedUsers: z.array(z.object({ id: snowflake, name: z.string().max(256) })).max(500),
  mentionedRoles: z.array(snowflake).max(500),
  /** @everyone / @here: a broadcast, never addressed to the bot. */
  mentionsEveryone: z.boolean(),
  /** Author of the message this one replies to, if any. */
  repliedToUserId: snowflake.nullable(),
  attachments: z.array(z.object({ name: z.string().max(512), url: z.string().max(2048), size: z.number().int().nonnegative(), contentType: z.string().max(256).nullable() })).max(10),
});
export type IncomingMessage = z.infer<typeof incomingMessageSchema>;

export const incomingCommandSchema = z.object({
  id: snowflake,
  applicationId: snowflake,
  /** Interaction token: lets us answer this one interaction for 15 minutes. Never logged. */
  token: z.string().min(1).max(1024),
  commandName: z.string().max(32),
  subcommand: z.string().max(32).nullable(),
  text: z.string().max(6000).nullable(),
  channelId: snowflake,
  guildId: snowflake.nullable(),
  parentId: snowflake.nullable(),
  user: z.object({ id: snowflake, name: z.string().max(256), bot: z.boolean() }),
});
export type IncomingCommand = z.infer<typeof incomingCommandSchema>;

/** The slash command registered on start: `/bulwark ask text:…`. */
export const SLASH_COMMAND = {
  name: 'bulwark',
  description: 'Talk to Bulwark',
  options: [{
    type: 1, name: 'ask', description: 'Ask Bulwark something',
    options: [{ type: 3, name: 'text', description: 'Your message', required: true, max_length: 4000 }],
  }],
} as const;

/*
 * An interaction is answered through its webhook, not the channel: its inbound message id carries
 * this prefix so the reply path can tell the two apart (snowflakes alone cannot).
 */
export const INTERACTION_PREFIX = 'i';
