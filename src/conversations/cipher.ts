/*
 * How conversation text is sealed at rest (database rows, queue payloads). Implemented by the vault
 * (src/vault/conversation-keys.ts), handed in by the hub: the conversation store, the inbox and the
 * workers never hold a key themselves.
 */

export interface ConversationKey { id: string; channel: string; accountId: string; chatId: string }

export interface TextCipher {
  /**
   * Seals `text` with the conversation's data key. Given the full key, a missing conversation row
   * (and its data key) is created; given only an id, the conversation must exist.
   */
  seal(conv: ConversationKey | string, context: string, text: string): Promise<string>;
  /** Opens what `seal` produced for the same conversation and context; throws when altered or misplaced. */
  open(conversationId: string, context: string, sealed: string): Promise<string>;
}

/** What a message's body is bound to: its conversation, id and role. */
export const messageContext = (id: string, role: string) => `message:${id}:${role}`;
/** What a queue payload's text is bound to: its job id. */
export const jobContext = (jobId: string) => `job:${jobId}`;
