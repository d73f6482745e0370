import type { OutboundQueues } from '../queues.js';
import { enqueueReply } from '../channels/queue-payloads.js';
import type { TextCipher } from '../conversations/cipher.js';
import type { ConversationStore } from '../conversations/store.js';
import type { Db } from '../db/client.js';
import type { ApprovalRequest } from './types.js';

/**
 * Tells the requesting conversation (and so its agent, which reads the conversation's history on
 * its next turn) how a request ended: a stored message sent through the outbound queue like any
 * reply. One message per request and outcome (the id says which), so a repeat is not sent twice.
 */
export function conversationNotifier(deps: { db: Db; store: ConversationStore; outbound: OutboundQueues; cipher: TextCipher }) {
  return async (req: ApprovalRequest, text: string): Promise<void> => {
    const conversationId = req.requester.conversationId;
    if (!conversationId) return;
    const conv = await deps.db.conversation.findUnique({ where: { id: conversationId }, select: { channel: true, accountId: true, chatId: true } });
    if (!conv) return;
    const messageId = `approval/${req.id}/${req.state}`;
    if (await deps.store.getMessage(messageId)) return;
    const stored = await deps.store.appendMessage({ id: messageId, conversationId, role: 'assistant', text });
    await enqueueReply(deps.outbound, deps.cipher, { channel: conv.channel, accountId: conv.accountId, chatId: conv.chatId, conversationId, messageId, text: stored.text, seq: stored.seq });
  };
}
