import { z } from 'zod';

/*
 * The one contract between channel adapters and the agent. Adapters turn a platform's update into an
 * InboundMessage (validated here, once, at the edge) and send OutboundMessages back. Nothing else
 * crosses the boundary.
 */

const id = z.string().min(1).max(256);

/** What a channel is called (adapter names, queue suffixes): lowercase letters, digits and '-'. */
export const CHANNEL_NAME = /^[a-z][a-z0-9-]{0,31}$/;

export const inboundMessageSchema = z.strictObject({
  /** Adapter name: web, cli, telegram, slack, discord, whatsapp. */
  channel: z.string().regex(CHANNEL_NAME),
  /** Which bot/account of that channel received it (one adapter may run several). */
  accountId: id,
  /** The platform's chat (DM, group, thread) — together with channel and account, the conversation. */
  chatId: id,
  /** The platform's own message id: redelivery of the same id is processed once. */
  messageId: id,
  /** Our conversation id, when the adapter already knows it (web chat); otherwise derived by the worker. */
  conversationId: z.string().min(1).max(128).optional(),
  chatType: z.enum(['dm', 'group']).default('dm'),
  sender: z.strictObject({ id, name: z.string().max(256).optional(), isBot: z.boolean().default(false) }),
  text: z.string().max(100_000),
  /** When the adapter accepted it (ms since epoch); used for latency metrics and ordering. */
  receivedAt: z.number().int().nonnegative(),
});
export type InboundMessage = z.infer<typeof inboundMessageSchema>;

/** A file the agent sent with a reply: stored sealed for its conversation (src/agent/send-file.ts). */
export const fileRefSchema = z.strictObject({
  id: z.string().regex(/^att_[0-9a-f]{32}$/),
  /** Shown to the recipient; made safe by the send_file tool (no path, a type-matching extension). */
  name: z.string().min(1).max(128),
  mime: z.enum(['image/jpeg', 'image/png', 'image/gif', 'image/webp', 'application/pdf', 'text/plain']),
  bytes: z.number().int().positive(),
});
export type FileRef = z.infer<typeof fileRefSchema>;
/** A file on its way out: the reference and the opened bytes. */
export type OutgoingFile = FileRef & { data: Buffer };
/** Most files one reply carries. */
export const MAX_REPLY_FILES = 5;

export const outboundMessageSchema = z.strictObject({
  channel: inboundMessageSchema.shape.channel,
  accountId: id,
  chatId: id,
  conversationId: z.string().min(1).max(128),
  /** Our id of the reply (stored message id). */
  messageId: id,
  /** The inbound platform message this answers. */
  replyTo: id.optional(),
  /** Markdown; adapters convert it to the platform's format. */
  text: z.string().max(1_000_000),
  /** Files sent after the text, each as the platform's document/photo upload. */
  files: z.array(fileRefSchema).max(MAX_REPLY_FILES).optional(),
  /** Position in the conversation's stored history (the polling cursor). */
  seq: z.number().int().nonnegative(),
  /** When the inbound message was accepted, to measure end-to-end latency. */
  inboundAt: z.number().int().nonnegative().optional(),
});
export type OutboundMessage = z.infer<typeof outboundMessageSchema>;

/** A channel's connection as shown by /readyz and `bulwark status`. */
export interface ChannelStatus {
  name: string;
  state: 'connected' | 'connecting' | 'disconnected' | 'error';
  detail?: string;
}

/** What the hub needs of a running channel adapter. */
export interface ChannelAdapter {
  readonly name: string;
  /** Delivers one reply. Throws to have the outbound job retried. */
  send(message: OutboundMessage): Promise<void>;
  status(): ChannelStatus;
  stop(): Promise<void>;
}

/*
 * BullMQ job ids may not contain ':' (it separates Redis key parts), so the design's
 * channel:account:messageId is written with '/' between URI-encoded parts.
 */
export function inboundJobId(m: Pick<InboundMessage, 'channel' | 'accountId' | 'messageId'>): string {
  return ['in', m.channel, m.accountId, m.messageId].map(encodeURIComponent).join('/');
}

/** The stored id (and outbound job id) of the reply to an inbound job: one reply per inbound message. */
export function replyIdFor(inboundJob: string): string {
  return `reply/${inboundJob.slice('in/'.length)}`;
}

/** Conversation id for channels whose adapters don't assign one. Deterministic, so no lookup races. */
export function conversationIdFor(m: Pick<InboundMessage, 'channel' | 'accountId' | 'chatId'>): string {
  return [m.channel, m.accountId, m.chatId].map(encodeURIComponent).join('/');
}
