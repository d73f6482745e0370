import { z } from 'zod';
import { jobContext, type TextCipher } from '../conversations/cipher.js';
import { OUTBOUND_JOB_OPTIONS, type OutboundQueues } from '../queues.js';
import { MAX_REPLY_FILES, fileRefSchema, inboundMessageSchema, outboundMessageSchema, type InboundMessage, type OutboundMessage } from './contract.js';

/*
 * Message texts never sit in Redis in the clear: queue payloads carry the text sealed with the
 * conversation's data key, bound to the job id (a payload copied into another job does not open).
 * A Redis dump or AOF file shows ids and metadata, not what anyone said.
 */

export const inboundJobSchema = inboundMessageSchema.extend({ conversationId: z.string().min(1).max(128), sealed: z.literal(true) });
/** File names are what someone wrote, like the text: they travel sealed too. */
export const outboundJobSchema = outboundMessageSchema.extend({ sealed: z.literal(true), files: z.string().max(20_000).optional() });
const filesContext = (jobId: string) => `${jobContext(jobId)}:files`;

export async function sealInbound(cipher: TextCipher, msg: InboundMessage & { conversationId: string }, jobId: string): Promise<z.input<typeof inboundJobSchema>> {
  const conv = { id: msg.conversationId, channel: msg.channel, accountId: msg.accountId, chatId: msg.chatId };
  return { ...msg, text: await cipher.seal(conv, jobContext(jobId), msg.text), sealed: true };
}

/** Validates an inbound job's payload and opens its text. Throws a ZodError or DecryptionError. */
export async function openInbound(cipher: TextCipher, data: unknown, jobId: string): Promise<InboundMessage & { conversationId: string }> {
  const { sealed: _sealed, ...job } = inboundJobSchema.parse(data);
  return { ...job, text: await cipher.open(job.conversationId, jobContext(jobId), job.text) };
}

/**
 * Queues a reply for its channel. The job id is the reply's message id: a turn or run repeated after
 * a crash adds the same id again and BullMQ drops it, so the user gets one reply.
 */
export async function enqueueReply(outbound: OutboundQueues, cipher: TextCipher, out: OutboundMessage): Promise<void> {
  const { files, ...rest } = out;
  const payload = {
    ...rest, text: await cipher.seal(out.conversationId, jobContext(out.messageId), out.text), sealed: true,
    ...(files && files.length > 0 ? { files: await cipher.seal(out.conversationId, filesContext(out.messageId), JSON.stringify(files)) } : {}),
  };
  await outbound.for(out.channel).add('send', payload, { ...OUTBOUND_JOB_OPTIONS, jobId: out.messageId });
}

export async function openOutbound(cipher: TextCipher, data: unknown): Promise<OutboundMessage> {
  const { sealed: _sealed, files, ...job } = outboundJobSchema.parse(data);
  const text = await cipher.open(job.conversationId, jobContext(job.messageId), job.text);
  if (files === undefined) return { ...job, text };
  return { ...job, text, files: z.array(fileRefSchema).max(MAX_REPLY_FILES).parse(JSON.parse(await cipher.open(job.conversationId, filesContext(job.messageId), files))) };
}
