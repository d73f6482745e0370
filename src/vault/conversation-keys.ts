import { isUniqueViolation, type Db } from '../db/client.js';
import type { ConversationKey, TextCipher } from '../conversations/cipher.js';
import { newDataKey, openWithKey, openWithMaster, sealWithKey, sealWithMaster } from './crypto.js';

/*
 * Conversations encrypted at rest: each conversation gets its own random data key, stored wrapped
 * by the master key on its Conversation row. Message bodies in the database and message texts in
 * queue payloads are sealed with it, bound (associated data) to the conversation and the message, so
 * one conversation's key opens nothing else and a row moved elsewhere does not decrypt.
 */

export const CONVERSATION_KEY_INFO = 'bulwark/conversation-key/v1';
export const conversationKeyAad = (conversationId: string) => JSON.stringify(['conversation-key', conversationId]);

/** Data keys held in memory, at most this many (oldest out); a miss costs one row read. */
const CACHE_LIMIT = 10_000;


export class ConversationCipher implements TextCipher {
  private readonly keys = new Map<string, Buffer>();

  constructor(private readonly db: Db, private readonly master: () => Buffer) {}

  private remember(id: string, key: Buffer): Buffer {
    this.keys.set(id, key);
    if (this.keys.size > CACHE_LIMIT) this.keys.delete(this.keys.keys().next().value!);
    return key;
  }

  private unwrap(id: string, wrapped: string): Buffer {
    return this.remember(id, openWithMaster(this.master(), CONVERSATION_KEY_INFO, wrapped, conversationKeyAad(id), `the key of conversation ${id}`));
  }

  private wrap(id: string, key: Buffer): string {
    return sealWithMaster(this.master(), CONVERSATION_KEY_INFO, key, conversationKeyAad(id));
  }

  /** The key of an existing conversation (creating the key if the row has none), or undefined if there is no row. */
  private async existingKey(id: string): Promise<Buffer | undefined> {
    const cached = this.keys.get(id);
    if (cached) return cached;
    for (let attempt = 0; attempt < 3; attempt++) {
      const row = await this.db.conversation.findUnique({ where: { id }, select: { wrappedKey: true } });
      if (!row) return undefined;
      if (row.wrappedKey) return this.unwrap(id, row.wrappedKey);
      const key = newDataKey();
      // Only the first writer's key is kept; a loser of the race reads the winner's on the next pass.
      const { count } = await this.db.conversation.updateMany({ where: { id, wrappedKey: null }, data: { wrappedKey: this.wrap(id, key) } });
      if (count === 1) return this.remember(id, key);
    }
    throw new Error(`could not read or create the data key of conversation ${id}`);
  }

  /** The conversation's data key, creating the conversation row and/or its key when missing. */
  async keyFor(conv: ConversationKey | string): Promise<Buffer> {
    const id = typeof conv === 'string' ? conv : conv.id;
    for (let attempt = 0; attempt < 3; attempt++) {
      const key = await this.existingKey(id);
      if (key) return key;
      if (typeof conv === 'string') throw new Error(`conversation ${id} does not exist, so nothing can be sealed for it`);
      const fresh = newDataKey();
      try {
        await this.db.conversation.create({ data: { id, channel: conv.channel, accountId: conv.accountId, chatId: conv.chatId, wrappedKey: this.wrap(id, fresh) } });
        return this.remember(id, fresh);
      } catch (err) {
        if (!isUniqueViolation(err)) throw err;
      }
    }
    throw new Error(`could not create the data key of conversation ${id}`);
  }

  async seal(conv: ConversationKey | string, context: string, text: string): Promise<string> {
    return sealWithKey(await this.keyFor(conv), text, JSON.stringify([typeof conv === 'string' ? conv : conv.id, context]));
  }

  async open(conversationId: string, context: string, sealed: string): Promise<string> {
    return openWithKey(await this.keyFor(conversationId), sealed, JSON.stringify([conversationId, context]), `a message of conversation ${conversationId}`);
  }
}
