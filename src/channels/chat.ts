import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { ChannelsConfig } from '../config/schema.js';
import type { DurableAuditSink } from '../audit/log.js';
import type { TextCipher } from '../conversations/cipher.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { DecideOutcome } from '../approvals/gateway.js';
import type { ApprovalRequest, Decision } from '../approvals/types.js';
import { AccessControl, type Verdict } from './access.js';
import { outcomeText, parseApprovalCommand, type ChatApprovals } from './approvals.js';
import { chunkMessage } from './chunk.js';
import { ConnectionState, scrub } from './connection.js';
import { FileGone, openAgentFile } from './attachments.js';
import type { Draft } from './drafts.js';
import { conversationIdFor, inboundMessageSchema, type ChannelAdapter, type FileRef, type OutboundMessage, type OutgoingFile } from './contract.js';
import { DeliveryLedger, PermanentSendError, RateLimiter, deliverChunks, type DeliveryReport } from './delivery.js';
import type { Inbox } from './inbox.js';
import { PAIRING_TTL_S, PairingStore } from './pairing.js';
import { TypingIndicator } from './typing.js';

/*
 * ChatCore: everything a chat adapter shares, bundled per channel. An adapter normalizes a platform
 * update into an IncomingChat and calls `receive`; it sends replies through `deliver`. Access control,
 * pairing, group gating, conversation ids, dedupe, typing, chunking, rate limits and the delivery
 * ledger all live here, so every platform behaves the same. See ADAPTERS.md.
 */

export type ChatChannelName = keyof ChannelsConfig;
export type ChatChannelConfig = ChannelsConfig[ChatChannelName];

/** What the hub hands to startChatChannels / each adapter. */
export interface ChatDeps {
  redis: Redis;
  inbox: Inbox;
  channels: ChannelsConfig;
  logger: Logger;
  metrics: Metrics;
  /** Secrets from the vault: telegram.token, slack.bot_token, … Undefined when not set. */
  secret(name: string): Promise<string | undefined>;
  /** The data directory (attachments, sessions). */
  home: string;
  /** Seals attachments with the conversation's data key (the vault's cipher, handed in by the hub). */
  cipher: TextCipher;
  /** The approval gateway, for owners' /approve and /deny and approval buttons (see approvals.ts). */
  approvals?: ChatApprovals | undefined;
  /** Pairing decisions (who was let in, by whom) go to the audit log, committed before the answer. */
  audit?: DurableAuditSink | undefined;
}

/** One platform message, normalized by the adapter. */
export interface IncomingChat {
  /** The bot/account that received it (Telegram bot id, Slack team id, Discord application id). */
  accountId: string;
  /** Where replies go; includes the thread/topic when the platform has one ("-100123/45"). */
  chatId: string;
  /** Stable across redeliveries of the same message, different for different messages. Edits are not new messages. */
  messageId: string;
  chatType: 'dm' | 'group';
  /** Matched against the `groups` enable list; usually the chat id without the thread part. */
  groupId?: string | undefined;
  sender: { id: string; name?: string | undefined; isBot: boolean };
  /** The bot's own message (echo). */
  fromSelf?: boolean;
  /** The bot's user/role was mentioned (never for @everyone/@here/@channel). */
  mentioned: boolean;
  replyToBot: boolean;
  isCommand: boolean;
  /** The text for the agent (the adapter strips the bot's own @mention). */
  text: string;
  receivedAt?: number;
}

/** How the core talks back to the chat outside the agent (pairing prompt, typing). */
export interface ChatIO {
  /** Sends a short plain-text notice (no markup) to the chat the message came from. */
  notice(text: string): Promise<unknown>;
  /** The platform's "typing…" action for this chat; repeated by the core until the reply is sent. */
  typing?(): Promise<unknown>;
}

export type ReceiveResult =
  | { outcome: 'accepted' | 'duplicate'; jobId: string; conversationId: string }
  | { outcome: 'ignored'; reason: string }
  | { outcome: 'pairing'; code?: string; prompted: boolean };

/** A running chat adapter: the hub's ChannelAdapter plus optional extras. */
export interface ChatAdapter extends ChannelAdapter {
  /** Hub HTTP routes (webhook modes). Registered once, before the server listens. */
  registerRoutes?(app: import('fastify').FastifyInstance): void;
  /** DMs every owner of this channel a pending approval request (with buttons where the platform has them). */
  promptOwners?(req: ApprovalRequest): Promise<void>;
  /** Shows a reply still being written (channels with `stream_replies`; see drafts.ts). */
  draft?(d: Draft): Promise<void>;
}

export function pairingPrompt(code: string, ttlMinutes: number): string {
  return `Hi! I only talk to people my owner has approved.\n\nTo ask for access, send this code to my owner:\n\n${code}\n\n(they run: bulwark pairing approve ${code}). The code is valid for ${ttlMinutes} minutes.`;
}

const epochKey = (channel: string, accountId: string, chatId: string) => `bulwark:epoch:${channel}:${accountId}:${chatId}`;
const typingKey = (accountId: string, chatId: string, messageId: string) => `${accountId}\u0000${chatId}\u0000${messageId}`;

/** "123~2" → { chatId: "123", epoch: 2 }: the platform chat id of an OutboundMessage.chatId. */
export function splitEpoch(chatId: string): { chatId: string; epoch: number } {
  const m = /^(.*)~(\d+)$/.exec(chatId);
  return m ? { chatId: m[1]!, epoch: Number(m[2]) } : { chatId, epoch: 0 };
}

/** How an adapter delivers a reply (see ChatCore.deliver). */
export interface DeliverIO {
  limit: number;
  convert(md: string): string;
  sendChunk(text: string, index: number): Promise<string>;
  sendFile(file: OutgoingFile): Promise<string>;
  /** For adapters that show drafts: replaces the draft message's text with the first chunk; returns its platform id. */
  editChunk?(platformId: string, text: string): Promise<string>;
}

export class ChatCore {
  readonly state: ConnectionState;
  readonly pairing: PairingStore;
  readonly access: AccessControl;
  readonly ledger: DeliveryLedger;
  /** Newest draft number seen per reply, and the per-reply chains that keep drafts and the final reply in order. */
  private readonly lastDraft = new Map<string, number>();
  private readonly chains = new Map<string, Promise<void>>();
  readonly limiter: RateLimiter;
  readonly typing: TypingIndicator;
  readonly logger: Logger;
  private readonly secrets: string[] = [];
  private readonly groupsSeen = new Set<string>();

  constructor(readonly name: ChatChannelName, readonly config: ChatChannelConfig, readonly deps: ChatDeps) {
    this.logger = deps.logger.child({ channel: name });
    this.state = new ConnectionState(name, this.logger);
    this.pairing = new PairingStore(deps.redis);
    this.access = new AccessControl(name, config, this.pairing);
    this.ledger = new DeliveryLedger(deps.redis, name);
    this.limiter = new RateLimiter(config.rate_per_chat_ms, config.rate_global_per_s);
    this.typing = new TypingIndicator(this.logger);
  }

  get redis(): Redis { return this.deps.redis; }

  /** Reads a secret and remembers it so scrub() removes it from anything logged. */
  async secret(name: string): Promise<string | undefined> {
    const v = await this.deps.secret(name);
    if (v) this.secrets.push(v);
    return v;
  }

  /** Removes tokens from a text before it is logged or shown (library errors quote request URLs). */
  scrub(text: string): string {
    return scrub(text, this.secrets);
  }

  /** Access control only (for commands the adapter answers itself, like /help). */
  async admit(m: IncomingChat, io: ChatIO): Promise<{ ok: true } | Exclude<ReceiveResult, { outcome: 'accepted' | 'duplicate' }>> {
    const verdict: Verdict = await this.access.check({
      chatType: m.chatType, groupId: m.groupId, senderId: m.sender.id, senderIsBot: m.sender.isBot, fromSelf: m.fromSelf ?? false,
      mentioned: m.mentioned, replyToBot: m.replyToBot, isCommand: m.isCommand,
    });
    if (verdict.pass) return { ok: true };
    if (!('pairing' in verdict)) {
      // Once per group at info level: the owner finds the id to put into `groups` in the log.
      const firstTime = verdict.reason === 'group-not-enabled' && m.groupId && !this.groupsSeen.has(m.groupId) && this.groupsSeen.size < 1000;
      if (firstTime) this.groupsSeen.add(m.groupId!);
      this.logger[firstTime ? 'info' : 'debug']({ chatId: m.chatId, groupId: m.groupId, reason: verdict.reason }, firstTime ? 'message ignored: this group is not in `groups` (add its id to enable it)' : 'message ignored');
      return { outcome: 'ignored', reason: verdict.reason };
    }
    const issued = await this.pairing.issue({ channel: this.name, senderId: m.sender.id, senderName: m.sender.name, chatId: m.chatId });
    if (issued.kind === 'full') {
      this.logger.warn({ senderId: m.sender.id }, 'unknown sender ignored: 3 pairing requests are already pending (approve or deny them with `bulwark pairing`)');
      return { outcome: 'pairing', prompted: false };
    }
    // A new code is always shown (it replaces one the sender may have seen); the same code again
    // at most once per pairing_prompt_minutes.
    const interval = this.config.pairing_prompt_minutes * 60;
    const mayPrompt = await this.pairing.mayPrompt(this.name, m.sender.id, interval);
    const prompted = issued.fresh || mayPrompt;
    if (prompted) {
      await io.notice(pairingPrompt(issued.code, PAIRING_TTL_S / 60)).catch((err: Error) => this.logger.warn({ err: this.scrub(err.message) }, 'could not send the pairing prompt'));
      this.logger.info({ senderId: m.sender.id, senderName: m.sender.name, code: issued.code }, 'unknown sender asked to pair: run `bulwark pairing approve CODE` to let them in');
    }
    return { outcome: 'pairing', code: issued.code, prompted };
  }

  /**
   * The chat id as stored and echoed back in OutboundMessage.chatId: the platform's chat id, plus
   * "~N" once the chat started over N times with /new (a conversation is one row per chat id).
   * Adapters that use newConversation strip it with `splitEpoch(out.chatId).chatId` before sending.
   */
  async epochChatId(accountId: string, chatId: string): Promise<string> {
    const epoch = Number(await this.redis.get(epochKey(this.name, accountId, chatId)) ?? 0);
    return epoch > 0 ? `${chatId}~${epoch}` : chatId;
  }

  /** The conversation id of a chat (changes with /new). */
  async conversationId(accountId: string, chatId: string): Promise<string> {
    return this.conversationIdOf(accountId, await this.epochChatId(accountId, chatId));
  }

  private conversationIdOf(accountId: string, fullChatId: string): string {
    const id = conversationIdFor({ channel: this.name, accountId, chatId: fullChatId });
    return id.length <= 128 ? id : `${this.name}/h_${createHash('sha256').update(id).digest('base64url').slice(0, 43)}`;
  }

  /** Starts a fresh conversation for this chat (the /new command); returns its id. */
  async newConversation(accountId: string, chatId: string): Promise<string> {
    await this.redis.incr(epochKey(this.name, accountId, chatId));
    return this.conversationId(accountId, chatId);
  }

  /** Seals a value (an attachment) for the conversation this message belongs to, creating it if needed. */
  async sealFor(m: Pick<IncomingChat, 'accountId' | 'chatId'>, context: string, text: string): Promise<string> {
    const chatId = await this.epochChatId(m.accountId, m.chatId);
    return this.deps.cipher.seal({ id: this.conversationIdOf(m.accountId, chatId), channel: this.name, accountId: m.accountId, chatId }, context, text);
  }

  /** Hands an admitted message to the Inbox (dedupe by messageId) and starts typing. */
  async enqueue(m: IncomingChat, io?: ChatIO): Promise<Extract<ReceiveResult, { outcome: 'accepted' | 'duplicate' }>> {
    const chatId = await this.epochChatId(m.accountId, m.chatId);
    const conversationId = this.conversationIdOf(m.accountId, chatId);
    const msg = inboundMessageSchema.parse({
      channel: this.name, accountId: m.accountId, chatId, messageId: m.messageId, conversationId, chatType: m.chatType,
      sender: { id: m.sender.id, ...(m.sender.name ? { name: m.sender.name.slice(0, 256) } : {}), isBot: m.sender.isBot },
      text: m.text.slice(0, 100_000), receivedAt: m.receivedAt ?? Date.now(),
    });
    const r = await this.deps.inbox.accept({ ...msg, conversationId });
    if (r.duplicate) {
      this.deps.metrics.duplicatesIn.inc({ channel: this.name });
      return { outcome: 'duplicate', jobId: r.jobId, conversationId };
    }
    this.deps.metrics.messagesIn.inc({ channel: this.name });
    if (io?.typing) this.typing.start(typingKey(m.accountId, chatId, m.messageId), io.typing);
    return { outcome: 'accepted', jobId: r.jobId, conversationId };
  }

  /** admit + enqueue: the one call for an ordinary message. `/approve ID` and `/deny ID` are answered here and never reach the agent. */
  async receive(m: IncomingChat, io: ChatIO): Promise<ReceiveResult> {
    const a = await this.admit(m, io);
    if (!('ok' in a)) return a;
    return (await this.approvalCommand(m, io)) ?? this.enqueue(m, io);
  }

  /** For an admitted message that is `/approve ID` or `/deny ID`: decides, answers, and says so; otherwise undefined. */
  async approvalCommand(m: IncomingChat, io: ChatIO): Promise<ReceiveResult | undefined> {
    const cmd = parseApprovalCommand(m.text);
    if (!cmd) return undefined;
    const r = await this.decideApproval(m, cmd.decision, cmd.id);
    await io.notice(outcomeText(r)).catch((err: Error) => this.logger.warn({ err: this.scrub(err.message) }, 'could not send the outcome of an approval command'));
    return { outcome: 'ignored', reason: 'approval-command' };
  }

  /**
   * An approval decision from this channel by the sender the platform authenticated (a message's
   * sender, a button press's user). Owner = in this channel's `owners`; owner's DM = a DM from an
   * owner. The gateway refuses (and audits) everything else.
   */
  async decideApproval(m: Pick<IncomingChat, 'accountId' | 'chatId' | 'chatType' | 'sender'>, decision: Decision, id: string): Promise<DecideOutcome> {
    if (!this.deps.approvals) return { ok: false, message: 'approvals cannot be decided from this chat (use `bulwark approvals`)' };
    const isOwner = !m.sender.isBot && this.access.isOwner(m.sender.id);
    let conversationId = await this.conversationId(m.accountId, m.chatId);
    // After /new the chat has a new conversation id, but it is still the chat whose agent asked.
    const asked = (await this.deps.approvals.get(id).catch(() => undefined))?.requester.conversationId;
    if (asked && asked.replace(/~\d+$/, '') === conversationId.replace(/~\d+$/, '')) conversationId = asked;
    return this.deps.approvals.decide(id, decision, { channel: this.name, senderId: m.sender.id, isOwner, conversationId, ownerDm: m.chatType === 'dm' && isOwner });
  }

  /**
   * Delivers one reply: converts and chunks the Markdown, skips chunks the ledger says were sent
   * (or may have been), rate-limits, and stops the typing indicator. `sendChunk` returns the
   * platform message id and throws RetryAfter / SendOutcomeUnknown / PermanentSendError (delivery.ts).
   */
  async deliver(out: OutboundMessage, o: DeliverIO): Promise<DeliveryReport> {
    return this.serial(out.messageId, async () => {
      if (out.replyTo) this.typing.stop(typingKey(out.accountId, out.chatId, out.replyTo));
      const chunks = chunkMessage(out.text, { limit: o.limit, convert: o.convert });
      // A draft shown while the answer was written becomes the first chunk (edited, not sent again).
      const draftId = o.editChunk ? await this.ledger.markFinal(out.messageId) : undefined;
      const sendChunk = draftId
        ? async (text: string, i: number) => (i === 0 ? o.editChunk!(draftId, text) : o.sendChunk(text, i))
        : o.sendChunk;
      // Each file is opened (with the conversation's key) only when its turn to be sent comes.
      const files = (out.files ?? []).map((ref) => async () => o.sendFile({ ...ref, data: await this.openFile(out.conversationId, ref) }));
      return deliverChunks({
        channel: this.name, messageId: out.messageId, chat: this.rateKey(out), chunks, files,
        ledger: this.ledger, limiter: this.limiter, logger: this.logger, sendChunk,
      });
    });
  }

  /**
   * Shows a draft of a reply still being written (drafts.ts): the first message of the reply, sent
   * once and then edited. Best effort: any failure drops the draft. Runs in turn with deliver() for
   * the same reply, and never after it started, so a late draft cannot overwrite the final text.
   */
  async deliverDraft(d: Draft, o: { limit: number; convert(md: string): string; send(text: string): Promise<string>; edit(platformId: string, text: string): Promise<string> }): Promise<void> {
    const last = this.lastDraft.get(d.messageId) ?? 0;
    if (d.n <= last) return;
    this.lastDraft.set(d.messageId, d.n);
    if (this.lastDraft.size > 10_000) this.lastDraft.delete(this.lastDraft.keys().next().value!);
    await this.serial(d.messageId, async () => {
      // A newer draft arrived while this one waited: skip to it.
      if (this.lastDraft.get(d.messageId) !== d.n || (await this.ledger.isFinal(d.messageId))) return;
      const [first] = chunkMessage(`${d.text} …`, { limit: o.limit, convert: o.convert });
      if (!first) return;
      await this.limiter.wait(this.rateKey(d));
      const id = await this.ledger.draftId(d.messageId);
      if (id) await o.edit(id, first);
      else await this.ledger.setDraft(d.messageId, await o.send(first));
    }).catch((err: Error) => this.logger.debug({ messageId: d.messageId, err: this.scrub(err.message) }, 'draft not shown'));
  }

  private rateKey(m: Pick<OutboundMessage, 'accountId' | 'chatId'>): string {
    return `${m.accountId}:${splitEpoch(m.chatId).chatId}`;
  }

  /** Runs `fn` after every earlier call for the same key has settled (drafts and the final reply of one message). */
  private serial<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.chains.get(key) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.then(() => undefined, () => undefined);
    this.chains.set(key, tail);
    void tail.then(() => { if (this.chains.get(key) === tail) this.chains.delete(key); });
    return run;
  }

  /** The bytes of a file the agent sent, opened for its conversation (a file of another conversation does not open). */
  async openFile(conversationId: string, ref: FileRef): Promise<Buffer> {
    try {
      return await openAgentFile(this.deps.home, this.deps.cipher, conversationId, ref);
    } catch (err) {
      // Missing, altered or misplaced: no retry can make it open (a database hiccup is retried).
      if (err instanceof FileGone) throw new PermanentSendError(`the file ${JSON.stringify(ref.name)} could not be opened: ${err.message}`);
      throw err;
    }
  }

  /**
   * Sends a pending approval request to each owner whose id matches `valid`, once: owners already
   * told are skipped, so a retried prompt job (one owner failed) does not message the others twice.
   * A permanent failure (DMs closed, bot blocked) is logged and skipped; any other failure throws
   * after the others were tried, and the prompt job is retried. `send` throws delivery.ts errors.
   */
  async promptEachOwner(req: ApprovalRequest, valid: RegExp, send: (owner: string) => Promise<void>, hint = ''): Promise<void> {
    const failures: string[] = [];
    for (const owner of this.config.owners) {
      if (!valid.test(owner)) continue;
      const key = `bulwark:${this.name}:prompted:${req.id}:${owner}`;
      if (await this.redis.exists(key)) continue;
      try {
        await send(owner);
        await this.redis.set(key, '1', 'EX', 7 * 24 * 3600);
      } catch (err) {
        const e = err as Error;
        this.logger.warn({ owner, request: req.id, err: this.scrub(e.message) }, `could not send an approval request to an owner${hint}`);
        if (!(e instanceof PermanentSendError)) failures.push(this.scrub(e.message));
      }
    }
    if (failures.length > 0) throw new Error(`${this.name}: ${failures.join('; ')}`);
  }

  /** Call from the adapter's stop(). */
  close(): void {
    this.typing.stopAll();
    this.state.stopped();
  }
}
