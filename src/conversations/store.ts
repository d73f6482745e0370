import { isUniqueViolation, type Db } from '../db/client.js';
import { z } from 'zod';
import { fileRefSchema, type FileRef } from '../channels/contract.js';
import { messageContext, type ConversationKey, type TextCipher } from './cipher.js';

const filesContext = (id: string, role: string) => `${messageContext(id, role)}:files`;

export type { ConversationKey } from './cipher.js';

/*
 * Every read and write of message bodies goes through this module. Bodies are sealed with the
 * conversation's data key (see src/vault/conversation-keys.ts) before they reach the database, so a
 * copied database file holds no conversation text.
 */

export type Role = 'user' | 'assistant';

export interface StoredMessage {
  seq: number;
  id: string;
  conversationId: string;
  role: Role;
  text: string;
  senderId: string | null;
  senderName: string | null;
  replyTo: string | null;
  /** Files the agent sent with this reply (empty for most messages). */
  files: FileRef[];
  createdAt: Date;
}

export interface NewMessage {
  id: string;
  conversationId: string;
  role: Role;
  text: string;
  senderId?: string | undefined;
  senderName?: string | undefined;
  replyTo?: string | undefined;
  tokensIn?: number | undefined;
  tokensOut?: number | undefined;
  /** Files the agent sent with this reply. */
  files?: FileRef[] | undefined;
}

type MessageRow = { seq: number; id: string; conversationId: string; role: string; body: string; sealed: boolean; senderId: string | null; senderName: string | null; replyTo: string | null; files?: string | null; createdAt: Date };


export class ConversationStore {
  /*
   * Conversations are never deleted while the hub runs, so "this id exists" can be remembered:
   * it saves a database round trip on every message of a busy conversation. Bounded, oldest out.
   */
  private readonly known = new Map<string, string>();

  constructor(private readonly db: Db, private readonly cipher: TextCipher) {}

  private async toStored(row: MessageRow): Promise<StoredMessage> {
    // Rows written before the vault existed are plaintext until sealPlaintext() has run over them.
    const text = row.sealed ? await this.cipher.open(row.conversationId, messageContext(row.id, row.role), row.body) : row.body;
    const files = row.files ? z.array(fileRefSchema).parse(JSON.parse(await this.cipher.open(row.conversationId, filesContext(row.id, row.role), row.files))) : [];
    return { seq: row.seq, id: row.id, conversationId: row.conversationId, role: row.role as Role, text, senderId: row.senderId, senderName: row.senderName, replyTo: row.replyTo, files, createdAt: row.createdAt };
  }

  private remember(id: string, channel: string): void {
    this.known.set(id, channel);
    if (this.known.size > 10_000) this.known.delete(this.known.keys().next().value!);
  }

  /** Creates the conversation if it does not exist yet; returns its id. Idempotent and race-safe. */
  async ensureConversation(key: ConversationKey): Promise<string> {
    const where = { channel_accountId_chatId: { channel: key.channel, accountId: key.accountId, chatId: key.chatId } };
    if (this.known.get(key.id) === key.channel) return key.id;
    const found = await this.db.conversation.findUnique({ where, select: { id: true } });
    if (found) return found.id;
    try {
      await this.db.conversation.create({ data: key });
      this.remember(key.id, key.channel);
      return key.id;
    } catch (err) {
      if (!isUniqueViolation(err)) throw err;
      const row = await this.db.conversation.findUnique({ where, select: { id: true } });
      if (!row) throw err;
      return row.id;
    }
  }

  async conversationExists(id: string, channel?: string): Promise<boolean> {
    let known = this.known.get(id);
    if (known === undefined) {
      const row = await this.db.conversation.findUnique({ where: { id }, select: { channel: true } });
      if (!row) return false;
      this.remember(id, (known = row.channel));
    }
    return channel === undefined || known === channel;
  }

  /** Stores a message once: a second call with the same id returns the first one's row. */
  async appendMessage(m: NewMessage): Promise<StoredMessage> {
    try {
      // The conversation exists (ensureConversation ran first), so its data key can be found or made.
      const body = await this.cipher.seal(m.conversationId, messageContext(m.id, m.role), m.text);
      const files = m.files && m.files.length > 0 ? await this.cipher.seal(m.conversationId, filesContext(m.id, m.role), JSON.stringify(m.files)) : null;
      const row = await this.db.message.create({
        data: {
          id: m.id, conversationId: m.conversationId, role: m.role, body, sealed: true,
          senderId: m.senderId ?? null, senderName: m.senderName ?? null, replyTo: m.replyTo ?? null,
          tokensIn: m.tokensIn ?? null, tokensOut: m.tokensOut ?? null, files,
        },
      });
      return await this.toStored(row);
    } catch (err) {
      if (!isUniqueViolation(err)) throw err;
      const row = await this.db.message.findUnique({ where: { id: m.id } });
      if (!row) throw err;
      return this.toStored(row);
    }
  }

  async getMessage(id: string): Promise<StoredMessage | null> {
    const row = await this.db.message.findUnique({ where: { id } });
    return row ? this.toStored(row) : null;
  }

  /** The last `limit` messages of a conversation up to and including `uptoSeq`, oldest first. */
  async history(conversationId: string, limit: number, uptoSeq?: number): Promise<StoredMessage[]> {
    const rows = await this.db.message.findMany({
      where: { conversationId, ...(uptoSeq !== undefined ? { seq: { lte: uptoSeq } } : {}) },
      orderBy: { seq: 'desc' },
      take: limit,
    });
    return Promise.all(rows.reverse().map((r) => this.toStored(r)));
  }

  /** Messages after a cursor (a `seq`), oldest first: the polling API. */
  async listAfter(conversationId: string, afterSeq: number, limit: number): Promise<StoredMessage[]> {
    const rows = await this.db.message.findMany({ where: { conversationId, seq: { gt: afterSeq } }, orderBy: { seq: 'asc' }, take: limit });
    return Promise.all(rows.map((r) => this.toStored(r)));
  }

  /**
   * Seals message bodies stored in plaintext (databases from before the vault). Batched and
   * idempotent: each row is rewritten only if it is still plaintext, so an interrupted run loses
   * nothing and the next start finishes it. Returns how many rows it sealed.
   */
  async sealPlaintext(batch = 500): Promise<number> {
    let sealed = 0;
    for (;;) {
      const rows = await this.db.message.findMany({ where: { sealed: false }, orderBy: { seq: 'asc' }, take: batch, include: { conversation: { select: { id: true, channel: true, accountId: true, chatId: true } } } });
      if (rows.length === 0) return sealed;
      for (const row of rows) {
        const body = await this.cipher.seal(row.conversation, messageContext(row.id, row.role), row.body);
        const { count } = await this.db.message.updateMany({ where: { seq: row.seq, sealed: false }, data: { body, sealed: true } });
        sealed += count;
      }
    }
  }

  async counts(): Promise<{ conversations: number; messages: number }> {
    const [conversations, messages] = await Promise.all([this.db.conversation.count(), this.db.message.count()]);
    return { conversations, messages };
  }
}
