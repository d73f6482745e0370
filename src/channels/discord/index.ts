import {
  ChannelType, Client, Events, GatewayIntentBits, MessageFlags, Options, Partials, REST, Routes,
  type ChatInputCommandInteraction, type Interaction, type Message, type RESTOptions,
} from 'discord.js';
import type { ChannelsConfig } from '../../config/schema.js';
import type { ApprovalRequest } from '../../approvals/types.js';
import { ownerPromptText } from '../approvals.js';
import { backoffMs, sleep } from '../connection.js';
import type { ChatAdapter, ChatCore, ChatIO, IncomingChat } from '../chat.js';
import type { ChannelStatus, OutboundMessage } from '../contract.js';
import { chunkMessage } from '../chunk.js';
import { defuseDiscordMentions, toDiscordMarkdown } from '../markdown.js';
import { receiveWithFiles } from '../inbound-files.js';
import { discordFiles } from './files.js';
import { normalizeCommand, normalizeMessage, type BotIdentity, type DiscordIncoming } from './normalize.js';
import { classifySendError, INTERACTION_TTL_MS, NO_PINGS, plainDiscordText, postChunk, SUPPRESS_EMBEDS, type PendingInteraction } from './send.js';
import { DISCORD_LIMIT, INTERACTION_PREFIX, SLASH_COMMAND } from './types.js';

/*
 * Discord through discord.js: the gateway (intents Guilds, GuildMessages, MessageContent,
 * DirectMessages) for incoming messages and slash commands, REST for replies. discord.js resumes a
 * dropped session and falls back to a fresh IDENTIFY when Discord refuses the resume; the adapter
 * mirrors each step into the channel status, and parks in "error" (no retry loop) on the two
 * problems only the user can fix: a rejected token and a disallowed intent.
 */

type DiscordConfig = ChannelsConfig['discord'];

/** Gateway close codes (and login errors) that need the user, with the fix. */
const TOKEN_FIX = 'Discord rejected the bot token: in the Developer Portal open your application → Bot → Reset Token, then store it with `bulwark secret add discord.token --replace` and restart';
const INTENT_FIX = 'Discord refused the Message Content intent: in the Developer Portal open your application → Bot → Privileged Gateway Intents, enable MESSAGE CONTENT INTENT, save, and restart';
const PERMANENT_CLOSE = new Map<number, string>([
  [4004, TOKEN_FIX],
  [4014, INTENT_FIX],
  [4013, 'Discord says the requested gateway intents are invalid (report this as a Bulwark bug)'],
  [4012, 'Discord says the gateway API version is invalid (report this as a Bulwark bug)'],
]);

function loginFix(err: unknown): string | undefined {
  const e = err as { code?: unknown; message?: unknown };
  if (e?.code === 'TokenInvalid' || e?.message === 'Authentication failed') return TOKEN_FIX;
  if (e?.message === 'Used disallowed intents') return INTENT_FIX;
  if (e?.message === 'Used invalid intents') return PERMANENT_CLOSE.get(4013);
  return undefined;
}

function restOptions(cfg: DiscordConfig): Partial<RESTOptions> {
  return {
    // The delivery ledger decides about repeats; a library-level retry after a timeout could post twice.
    retries: 0,
    ...(cfg.api_url ? { api: cfg.api_url, version: '10' } : {}),
    // A 429 on a send becomes RetryAfter: the job waits in the queue instead of holding a worker.
    rejectOnRateLimit: (d) => /\/messages|^\/webhooks/.test(d.route),
  };
}

/** Copies what the adapter reads from a discord.js Message into a plain record for normalizeMessage. */
function fromMessage(m: Message): unknown {
  const thread = m.channel?.isThread() ? m.channel : undefined;
  return {
    id: m.id, channelId: m.channelId, guildId: m.guildId ?? null, parentId: thread?.parentId ?? null, isThread: Boolean(thread),
    isDm: m.channel?.type === ChannelType.DM || !m.guildId, system: m.system, webhookId: m.webhookId ?? null,
    author: { id: m.author.id, name: m.author.globalName ?? m.author.username, bot: m.author.bot },
    content: m.content, mentionsEveryone: m.mentions.everyone,
    mentionedUsers: [...m.mentions.users.values()].map((u) => ({ id: u.id, name: u.globalName ?? u.username })),
    mentionedRoles: [...m.mentions.roles.keys()],
    repliedToUserId: m.reference?.messageId ? (m.mentions.repliedUser?.id ?? null) : null,
    attachments: [...m.attachments.values()].slice(0, 10).map((a) => ({ name: a.name, url: a.url, size: a.size, contentType: a.contentType ?? null })),
  };
}

function fromInteraction(i: ChatInputCommandInteraction): unknown {
  const thread = i.channel?.isThread() ? i.channel : undefined;
  return {
    id: i.id, applicationId: i.applicationId, token: i.token, commandName: i.commandName,
    subcommand: i.options.getSubcommand(false), text: i.options.getString('text'),
    channelId: i.channelId, guildId: i.guildId ?? null, parentId: thread?.parentId ?? null,
    user: { id: i.user.id, name: i.user.globalName ?? i.user.username, bot: i.user.bot },
  };
}

export class DiscordAdapter implements ChatAdapter {
  readonly name = 'discord';
  private client: Client | undefined;
  private readonly rest: REST;
  private readonly abort = new AbortController();
  private readonly interactions = new Map<string, PendingInteraction>();
  private everReady = false;
  private running: Promise<void> | undefined;

  constructor(private readonly core: ChatCore, private readonly token: string) {
    this.rest = new REST(restOptions(core.config as DiscordConfig)).setToken(token);
  }

  private get log() { return this.core.logger; }

  status(): ChannelStatus { return this.core.state.status(); }

  /** Connects in the background; the status says how far it got. */
  start(): void {
    this.running = this.connectLoop().catch((err: Error) => this.core.state.error(this.core.scrub(`unexpected failure: ${err.message}`)));
  }

  private buildClient(): Client {
    const client = new Client({
      intents: [GatewayIntentBits.Guilds, GatewayIntentBits.GuildMessages, GatewayIntentBits.MessageContent, GatewayIntentBits.DirectMessages],
      partials: [Partials.Channel],
      allowedMentions: { parse: [], repliedUser: false },
      rest: restOptions(this.core.config as DiscordConfig),
      // An idle bot should stay small: the adapter reads each message once and never looks back.
      makeCache: Options.cacheWithLimits({ ...Options.DefaultMakeCacheSettings, MessageManager: 10, PresenceManager: 0, ReactionManager: 0, GuildEmojiManager: 0, GuildStickerManager: 0 }),
    });
    const state = this.core.state;
    client.on(Events.ClientReady, (c) => {
      this.everReady = true;
      state.connected(`logged in as ${c.user.tag}`);
      c.application.commands.set([SLASH_COMMAND]).catch((err: Error) => this.log.warn({ err: this.core.scrub(err.message) }, 'could not register the /bulwark slash command'));
    });
    client.on(Events.ShardReconnecting, () => state.disconnected('gateway connection lost; resuming the session'));
    client.on(Events.ShardResume, (_id, replayed) => state.connected(`session resumed (${replayed} missed events replayed)`));
    client.on(Events.ShardReady, () => { if (this.everReady) state.connected('new session (Discord refused to resume the old one)'); });
    client.on(Events.ShardDisconnect, (ev) => {
      const fix = PERMANENT_CLOSE.get(ev.code);
      state.error(fix ?? `the gateway closed with code ${ev.code} and will not reconnect; restart the hub`);
    });
    client.on(Events.ShardError, (err) => this.log.debug({ err: this.core.scrub(err.message) }, 'discord gateway error'));
    client.on(Events.Error, (err) => this.log.warn({ err: this.core.scrub(err.message) }, 'discord client error'));
    client.on(Events.MessageCreate, (m) => { this.onMessage(m).catch((err: Error) => this.log.error({ err: this.core.scrub(err.message) }, 'could not take a Discord message')); });
    client.on(Events.InteractionCreate, (i) => { this.onInteraction(i).catch((err: Error) => this.log.error({ err: this.core.scrub(err.message) }, 'could not take a Discord command')); });
    return client;
  }

  /** Logs in, retrying network failures with backoff; a rejected token or intent stops for good. */
  private async connectLoop(): Promise<void> {
    for (let attempt = 0; !this.abort.signal.aborted; attempt++) {
      this.core.state.connecting(attempt === 0 ? 'logging in to the Discord gateway' : `logging in again (attempt ${attempt + 1})`);
      const client = this.buildClient();
      this.client = client;
      try {
        await client.login(this.token);
        return; // From here discord.js resumes and re-identifies by itself; the events above track it.
      } catch (err) {
        await client.destroy().catch(() => undefined);
        if (this.abort.signal.aborted) return;
        const fix = loginFix(err);
        if (fix) { this.core.state.error(fix); return; }
        this.core.state.disconnected(this.core.scrub(`cannot reach Discord: ${(err as Error).message}`));
        await sleep(backoffMs(attempt, 1000, 60_000), this.abort.signal);
      }
    }
  }

  private identity(client: Client): BotIdentity {
    return {
      userId: client.user?.id ?? '',
      roleIn: (guildId) => (client.user ? client.guilds.cache.get(guildId)?.roles.botRoleFor(client.user)?.id : undefined),
    };
  }

  private toChat(n: DiscordIncoming, accountId: string): IncomingChat {
    const a = n.addressing;
    return {
      accountId, chatId: n.chatId, messageId: n.messageId, chatType: n.chatType, groupId: n.groupId,
      sender: { id: n.senderId, name: n.senderName, isBot: a.senderIsBot }, fromSelf: a.fromSelf,
      mentioned: a.mentioned, replyToBot: a.replyToBot, isCommand: a.isCommand, text: n.text,
    };
  }

  private async onMessage(m: Message): Promise<void> {
    const client = m.client;
    const n = normalizeMessage(fromMessage(m), this.identity(client));
    if (!n.ok) { this.log.debug({ reason: n.reason }, 'discord message ignored'); return; }
    const chatId = n.msg.chatId;
    const io: ChatIO = {
      notice: (text) => this.rest.post(Routes.channelMessages(chatId), { body: { content: text, allowed_mentions: NO_PINGS, flags: SUPPRESS_EMBEDS } }),
      typing: () => this.rest.post(Routes.channelTyping(chatId)),
    };
    // Files are fetched only after access control (receiveWithFiles admits first).
    await receiveWithFiles(this.core, this.toChat(n.msg, client.user.id), io, discordFiles(n.msg.attachments ?? [], (this.core.config as DiscordConfig).api_url));
  }

  private async onInteraction(i: Interaction): Promise<void> {
    if (!i.isChatInputCommand() || i.commandName !== SLASH_COMMAND.name) return;
    const n = normalizeCommand(fromInteraction(i));
    const ephemeral = (content: string) => i.reply({ content, flags: MessageFlags.Ephemeral, allowedMentions: { parse: [] } });
    if (!n.ok) { await ephemeral('Usage: /bulwark ask text:<your message>'); return; }
    const chat = this.toChat(n.msg, i.client.user.id);
    // The pairing prompt is ephemeral: only the person who ran the command sees the code.
    const admitted = await this.core.admit(chat, { notice: (text) => ephemeral(text) });
    if (!('ok' in admitted)) {
      if (!i.replied) await ephemeral(admitted.outcome === 'pairing' ? 'Waiting for the owner to approve your pairing code.' : 'Bulwark does not answer here.');
      return;
    }
    // Discord wants an answer within 3 s: "thinking…" now, the reply when the agent is done.
    await i.deferReply();
    const int = n.msg.interaction!;
    this.interactions.set(n.msg.messageId, { applicationId: int.applicationId, token: int.token, expiresAt: Date.now() + INTERACTION_TTL_MS });
    for (const [k, v] of this.interactions) if (v.expiresAt < Date.now()) this.interactions.delete(k);
    await this.core.enqueue(chat);
  }

  async send(out: OutboundMessage): Promise<void> {
    const viaInteraction = out.replyTo?.startsWith(INTERACTION_PREFIX) ?? false;
    const interaction = viaInteraction ? this.interactions.get(out.replyTo!) : undefined;
    const replyTo = viaInteraction ? undefined : out.replyTo;
    // A reply of files only: its first file takes the first chunk's place (answers the command, quotes the message).
    const textless = chunkMessage(out.text, { limit: DISCORD_LIMIT, convert: toDiscordMarkdown }).length === 0;
    const report = await this.core.deliver(out, {
      limit: DISCORD_LIMIT, convert: toDiscordMarkdown,
      sendChunk: (content, index) => postChunk(this.rest, { channelId: out.chatId, content, first: index === 0, interaction, replyTo, previews: this.core.config.link_previews }),
      // Same path as the text: a thread is its own channel, and through /bulwark ask the file is a
      // follow-up on the interaction (seen by whoever saw the answer), or a channel post once it expired.
      sendFile: (file) => postChunk(this.rest, {
        channelId: out.chatId, content: '', interaction, replyTo,
        first: textless && out.files?.[0]?.id === file.id, file: { name: file.name, data: file.data, contentType: file.mime },
      }),
    });
    if (interaction && report.sent + report.skipped + report.unknown.length > 0) this.interactions.delete(out.replyTo!);
  }

  /**
   * Each owner gets the pending request in a DM with the bot (opened with POST /users/@me/channels),
   * decided by replying `/approve ID` or `/deny ID` there. Owners already told are skipped, so a
   * retried prompt job (one owner failed) does not DM the others twice.
   */
  async promptOwners(req: ApprovalRequest): Promise<void> {
    const post = (route: `/${string}`, body: unknown) => this.rest.post(route, { body }).catch((err: unknown) => { throw classifySendError(err); });
    await this.core.promptEachOwner(req, /^\d{15,22}$/, async (owner) => {
      const dm = (await post(Routes.userChannels(), { recipient_id: owner })) as { id?: unknown };
      if (typeof dm?.id !== 'string') throw new Error('Discord did not return the DM channel');
      await post(Routes.channelMessages(dm.id), { content: discordPromptText(req), allowed_mentions: NO_PINGS, flags: SUPPRESS_EMBEDS });
    }, ' (they must share a server with the bot and accept its DMs)');
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.running;
    await this.client?.destroy().catch(() => undefined);
    this.core.close();
  }
}

const PROMPT_CUT = (id: string) => `… (cut; see it all with: bulwark approvals show ${id})`;

/**
 * The owner prompt within one Discord message (2,000 characters): the request as written by the
 * agent is escaped (Markdown and mention syntax show as typed), the commands to answer with stay last.
 */
export function discordPromptText(req: ApprovalRequest): string {
  const footer = `Reply here with \`/approve ${req.id}\` or \`/deny ${req.id}\`.`;
  const full = ownerPromptText(req, footer);
  let head = defuseDiscordMentions(plainDiscordText(full.slice(0, full.length - footer.length)));
  const room = DISCORD_LIMIT - footer.length;
  if (head.length > room) head = `${head.slice(0, room - PROMPT_CUT(req.id).length - 2).replace(/\\$/, '')}${PROMPT_CUT(req.id)}\n\n`;
  return head + footer;
}

/** Called by startChatChannels when `[channels.discord] enabled = true`. */
export async function createAdapter(core: ChatCore): Promise<ChatAdapter> {
  const token = await core.secret('discord.token');
  if (!token) throw new Error('no Discord bot token: create a bot in the Discord Developer Portal, then run `bulwark secret add discord.token` (see README, Discord)');
  const adapter = new DiscordAdapter(core, token);
  adapter.start();
  return adapter;
}

/** `bulwark channels test discord`: asks Discord who the token belongs to. */
export async function probe(core: ChatCore): Promise<{ ok: boolean; detail: string }> {
  const token = await core.secret('discord.token');
  if (!token) return { ok: false, detail: 'no token: run `bulwark secret add discord.token`' };
  try {
    const me = (await new REST(restOptions(core.config as DiscordConfig)).setToken(token).get(Routes.user('@me'))) as { username?: string; id?: string };
    return { ok: true, detail: `the token belongs to the bot ${me.username ?? '?'} (${me.id ?? '?'})` };
  } catch (err) {
    const status = (err as { status?: number }).status;
    return { ok: false, detail: status === 401 ? TOKEN_FIX : core.scrub(`cannot reach Discord: ${(err as Error).message}`) };
  }
}
