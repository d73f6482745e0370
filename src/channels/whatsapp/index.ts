import { existsSync } from 'node:fs';
import wweb from 'whatsapp-web.js';
import type { Message } from 'whatsapp-web.js';
import type { ChannelsConfig } from '../../config/schema.js';
import type { ApprovalRequest } from '../../approvals/types.js';
import { ownerPromptText } from '../approvals.js';
import type { ChatAdapter, ChatCore, ChatIO } from '../chat.js';
import { backoffMs, sleep } from '../connection.js';
import type { ChannelStatus, OutboundMessage } from '../contract.js';
import { PermanentSendError, RetryAfter, SendOutcomeUnknown } from '../delivery.js';
import { toWhatsApp } from '../markdown.js';
import { chromiumPath, createWhatsAppClient, hasSession, markUnlinked, type WhatsAppClient } from './client.js';
import { receiveWithFiles } from '../inbound-files.js';
import { whatsappFiles } from './files.js';
import { normalizeMessage, WHATSAPP_LIMIT } from './normalize.js';

/*
 * WhatsApp through whatsapp-web.js: a linked device (WhatsApp Web in headless Chromium) that the user
 * links once with `bulwark channels login whatsapp`. The adapter only uses a narrow slice of the
 * client (on / initialize / sendMessage / destroy / info), so tests drive the real Client and Message
 * classes offline. WhatsApp has no bot API: this automates a personal account, which WhatsApp may
 * ban; the README recommends a dedicated number.
 */

type WhatsAppConfig = ChannelsConfig['whatsapp'];

const RELINK = 'run `bulwark channels login whatsapp` and scan the QR code with the phone (WhatsApp → Linked devices)';
/** Disconnect reasons after which only a new login helps. */
const PERMANENT_DISCONNECT = new Set(['LOGOUT', 'UNPAIRED', 'UNPAIRED_IDLE', 'CONFLICT', 'Max qrcode retries reached']);

/** Mimes WhatsApp shows as a photo; everything else the agent sends (PDF, text) goes as a document. */
const INLINE_IMAGES = new Set(['image/jpeg', 'image/png', 'image/gif', 'image/webp']);

/** How long a reply waits before it checks again whether WhatsApp Web is back. */
const RECONNECT_WAIT_MS = 5000;

const serialized = (v: unknown): string | undefined =>
  typeof v === 'string' ? v : typeof (v as { _serialized?: unknown })?._serialized === 'string' ? (v as { _serialized: string })._serialized : undefined;

/** Copies what the adapter reads from a whatsapp-web.js Message into a plain record for normalizeMessage. */
function fromMessage(msg: Message): unknown {
  const raw = (msg as unknown as { _data?: Record<string, unknown> })._data ?? {};
  return {
    id: msg.id?._serialized, fromMe: msg.fromMe, from: msg.from, ...(msg.to ? { to: msg.to } : {}), ...(msg.author ? { author: msg.author } : {}),
    body: msg.body ?? '', type: msg.type, isStatus: Boolean(msg.isStatus), broadcast: Boolean(msg.broadcast),
    mentionedIds: ((msg.mentionedIds ?? []) as unknown[]).map(serialized).filter((x): x is string => Boolean(x)),
    ...(serialized(raw.quotedParticipant) ? { quotedParticipant: serialized(raw.quotedParticipant) } : {}),
    ...(typeof raw.notifyName === 'string' && raw.notifyName ? { senderName: raw.notifyName } : {}),
    hasMedia: Boolean(msg.hasMedia),
    ...(typeof raw.filename === 'string' && raw.filename ? { mediaName: raw.filename } : {}),
    ...(typeof raw.size === 'number' && Number.isSafeInteger(raw.size) && raw.size >= 0 ? { mediaSize: raw.size } : {}),
  };
}

/** A failed sendMessage as the ledger's outcome. The page may have sent it before failing: no blind repeat. */
function classifySendError(err: unknown): Error {
  const text = String((err as Error)?.message ?? err);
  if (/invalid wid|no lid for user|not a valid|chat not found|wid error/i.test(text)) return new PermanentSendError(`WhatsApp refused the chat: ${text.slice(0, 200)}`);
  return new SendOutcomeUnknown(`WhatsApp Web failed while sending: ${text.slice(0, 200)}`);
}

export class WhatsAppAdapter implements ChatAdapter {
  readonly name = 'whatsapp';
  private readonly abort = new AbortController();
  private readonly ownIds = new Set<string>();
  private running: Promise<void> | undefined;
  private attempt = 0;
  private reconnecting = false;

  /** Listens on the client at once; `connect()` starts the browser (tests emit events instead). */
  constructor(private readonly core: ChatCore, private readonly client: WhatsAppClient) {
    const state = core.state;
    client.on('qr', () => {
      // A QR code during a normal start means the stored session is gone: scanning needs the user.
      state.error(`WhatsApp is not linked (the session expired or was removed): ${RELINK}`);
      void this.client.destroy().catch(() => undefined);
    });
    client.on('authenticated', () => state.connecting('session accepted, loading chats'));
    client.on('auth_failure', () => state.error(`WhatsApp rejected the stored session: ${RELINK}`));
    client.on('ready', () => { this.attempt = 0; void this.onReady(); });
    client.on('change_state', (s: unknown) => this.core.logger.debug({ state: String(s) }, 'whatsapp state'));
    client.on('disconnected', (reason: unknown) => this.onDisconnected(String(reason)));
    client.on('message', (msg: Message) => { this.onMessage(msg).catch((err: Error) => this.core.logger.error({ err: err.message }, 'could not take a WhatsApp message')); });
  }

  status(): ChannelStatus { return this.core.state.status(); }

  /** Starts WhatsApp Web; retries a failed start with backoff. */
  connect(): void {
    this.running = this.connectLoop();
  }

  private async connectLoop(): Promise<void> {
    while (!this.abort.signal.aborted && !this.core.state.failed) {
      this.core.state.connecting(this.attempt === 0 ? 'starting WhatsApp Web in Chromium' : `restarting WhatsApp Web (attempt ${this.attempt + 1})`);
      try {
        await this.client.initialize();
        return; // 'ready' marks it connected; 'disconnected' comes back here.
      } catch (err) {
        await this.client.destroy().catch(() => undefined);
        if (this.abort.signal.aborted || this.core.state.failed) return;
        this.core.state.disconnected(`WhatsApp Web did not start: ${String((err as Error)?.message ?? err).slice(0, 200)}`);
        await sleep(backoffMs(this.attempt++, 2000, 120_000), this.abort.signal);
      }
    }
  }

  private async onReady(): Promise<void> {
    const wid = serialized(this.client.info?.wid);
    if (wid) this.ownIds.add(wid);
    // Groups increasingly address people by LID: learn ours so mentions of it count too.
    const lookup = (this.client as { getContactLidAndPhone?: (ids: string[]) => Promise<Array<{ lid?: string; pn?: string }>> }).getContactLidAndPhone;
    if (wid && lookup) {
      const found = await lookup.call(this.client, [wid]).catch(() => []);
      for (const f of found) if (f.lid) this.ownIds.add(f.lid);
    }
    this.core.state.connected(wid ? `linked as +${wid.split('@')[0]}` : 'linked');
  }

  private onDisconnected(reason: string): void {
    if (this.abort.signal.aborted) return;
    if (PERMANENT_DISCONNECT.has(reason)) {
      if (reason === 'CONFLICT') { this.core.state.error('WhatsApp Web was opened with this account somewhere else, which ends this session: close it there and restart the hub'); return; }
      markUnlinked(this.core.deps.home);
      this.core.state.error(`WhatsApp ended the session (${reason}): ${RELINK}`);
      return;
    }
    this.core.state.disconnected(`WhatsApp Web disconnected (${reason}); reconnecting`);
    if (this.running === undefined || this.reconnecting) return;
    this.reconnecting = true;
    void sleep(backoffMs(this.attempt++, 2000, 120_000), this.abort.signal).then(() => {
      this.reconnecting = false;
      // Unlinked meanwhile (needs the user), or back by itself: nothing to do.
      if (!this.abort.signal.aborted && this.core.state.state === 'disconnected') this.connect();
    });
  }

  private async onMessage(msg: Message): Promise<void> {
    const n = normalizeMessage(fromMessage(msg), this.ownIds);
    if (!n.ok) { this.core.logger.debug({ reason: n.reason }, 'whatsapp message ignored'); return; }
    const m = n.msg;
    const accountId = serialized(this.client.info?.wid) ?? 'whatsapp';
    const io: ChatIO = {
      notice: (text) => this.client.sendMessage(m.chatId, text, { linkPreview: false }),
      typing: async () => {
        const getChat = (this.client as { getChatById?: (id: string) => Promise<{ sendStateTyping(): Promise<unknown> }> }).getChatById;
        if (getChat) await (await getChat.call(this.client, m.chatId)).sendStateTyping();
      },
    };
    // Media is downloaded only after access control (receiveWithFiles admits first).
    await receiveWithFiles(this.core, {
      accountId, chatId: m.chatId, messageId: m.messageId, chatType: m.chatType, groupId: m.groupId,
      sender: { id: m.senderId, name: m.senderName, isBot: false }, fromSelf: m.addressing.fromSelf,
      mentioned: m.addressing.mentioned, replyToBot: m.addressing.replyToBot, isCommand: false, text: m.text,
    }, io, m.media ? whatsappFiles(msg, m.media) : []);
  }

  async send(out: OutboundMessage): Promise<void> {
    // Nothing can go out without the browser session. While it restarts, the reply waits without
    // spending a delivery attempt; once the session needs the user (error), attempts run out normally.
    const st = this.core.state.status();
    if (st.state === 'connecting' || st.state === 'disconnected') throw new RetryAfter(RECONNECT_WAIT_MS, 'WhatsApp Web is reconnecting');
    if (st.state !== 'connected') throw new Error(`WhatsApp is not connected: ${st.detail ?? st.state}`);
    await this.core.deliver(out, {
      limit: WHATSAPP_LIMIT, convert: toWhatsApp,
      sendChunk: (text, index) => this.post(out.chatId, text, { linkPreview: this.core.config.link_previews, ...(index === 0 && out.replyTo ? { quotedMessageId: out.replyTo } : {}) }),
      // Images show inline (a photo); PDFs and text files go as documents under their name.
      sendFile: (file) => this.post(out.chatId, new wweb.MessageMedia(file.mime, file.data.toString('base64'), file.name), { sendMediaAsDocument: !INLINE_IMAGES.has(file.mime) }),
    });
  }

  /** One sendMessage, its failure mapped to the ledger's outcomes; returns the message id. */
  private async post(chatId: string, content: Parameters<WhatsAppClient['sendMessage']>[1], options: Parameters<WhatsAppClient['sendMessage']>[2]): Promise<string> {
    let sent: Awaited<ReturnType<WhatsAppClient['sendMessage']>>;
    try {
      sent = await this.client.sendMessage(chatId, content, options);
    } catch (err) {
      throw classifySendError(err);
    }
    if (!sent) throw new PermanentSendError('WhatsApp Web does not send this kind of message to that chat');
    return sent.id._serialized;
  }

  /**
   * Each owner (a phone JID, "15551234567@c.us") gets the pending request in their chat with this
   * number, decided by replying `/approve ID` or `/deny ID` there. Owners already told are skipped,
   * so a retried prompt job does not message the others twice.
   */
  async promptOwners(req: ApprovalRequest): Promise<void> {
    if (this.core.state.status().state !== 'connected') throw new Error('whatsapp: not connected; the prompt is retried');
    // Retried also when a prompt may have arrived: a repeated prompt is harmless, a lost one leaves the request to expire.
    await this.core.promptEachOwner(req, /^\d{5,20}@c\.us$/, async (owner) => {
      await this.post(owner, ownerPromptText(req, `Reply here with /approve ${req.id} or /deny ${req.id}`), { linkPreview: false });
    });
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.running?.catch(() => undefined);
    await this.client.destroy().catch(() => undefined);
    this.core.close();
  }
}

/** Called by startChatChannels when `[channels.whatsapp] enabled = true`. */
export async function createAdapter(core: ChatCore): Promise<ChatAdapter> {
  const cfg = core.config as WhatsAppConfig;
  const chromium = chromiumPath(cfg.chromium_path);
  if (!existsSync(chromium)) throw new Error(`Chromium was not found at ${chromium}: install it (Debian/Ubuntu: apt-get install chromium) or set chromium_path under [channels.whatsapp] in bulwark.toml`);
  if (!hasSession(core.deps.home)) throw new Error(`WhatsApp is not linked yet: ${RELINK}`);
  const adapter = new WhatsAppAdapter(core, createWhatsAppClient({ home: core.deps.home, chromium }));
  adapter.connect();
  return adapter;
}

/** `bulwark channels test whatsapp`: what can be checked without starting a browser. */
export async function probe(core: ChatCore): Promise<{ ok: boolean; detail: string }> {
  const chromium = chromiumPath((core.config as WhatsAppConfig).chromium_path);
  if (!existsSync(chromium)) return { ok: false, detail: `Chromium not found at ${chromium}: apt-get install chromium, or set [channels.whatsapp] chromium_path` };
  if (!hasSession(core.deps.home)) return { ok: false, detail: `no linked session: ${RELINK}` };
  return { ok: true, detail: `Chromium at ${chromium}; a linked session is stored (whether the phone still links it shows once the hub runs)` };
}
