import type { OutboundQueues } from '../queues.js';
import { conversationIdFor, type OutboundMessage } from '../channels/contract.js';
import { enqueueReply } from '../channels/queue-payloads.js';
import type { TextCipher } from '../conversations/cipher.js';
import type { ConversationStore } from '../conversations/store.js';
import type { Routine } from './spec.js';
import type { Spent } from './turn.js';

/**
 * Posts what a run has to say: stored in the target conversation, then queued on "outbound" like any
 * reply, so routines never touch a channel SDK. The message id (and outbound job id) derive from the
 * run id: a run repeated after a crash finds its stored message and BullMQ drops the second send.
 */
export interface DeliverDeps {
  store: ConversationStore;
  outbound: OutboundQueues;
  cipher: TextCipher;
  /** The leak guard every outbound text passes (injected by the hub; the same one chat replies use). */
  guard?: ((text: string) => Promise<{ text: string; findings: unknown[] }>) | undefined;
  onLeak?: ((findings: unknown[]) => void) | undefined;
}

export async function deliver(deps: DeliverDeps, r: Routine, runId: string, raw: string, spent: Spent): Promise<string> {
  const guarded = deps.guard ? await deps.guard(raw) : { text: raw, findings: [] };
  if (guarded.findings.length > 0) deps.onLeak?.(guarded.findings);
  const text = guarded.text;
  const conversationId = await deps.store.ensureConversation({ id: conversationIdFor(r.target), ...r.target });
  const messageId = `routine/${runId}`;
  const stored = await deps.store.appendMessage({ id: messageId, conversationId, role: 'assistant', text, tokensIn: spent.tokensIn, tokensOut: spent.tokensOut });
  const out: OutboundMessage = { ...r.target, conversationId, messageId, text: stored.text, seq: stored.seq };
  await enqueueReply(deps.outbound, deps.cipher, out);
  return messageId;
}
