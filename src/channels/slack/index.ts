import { App, SocketModeReceiver, webApi, type AllMiddlewareArgs, type SlackCommandMiddlewareArgs, type SlackEventMiddlewareArgs } from '@slack/bolt';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { ApprovalRequest } from '../../approvals/types.js';
import type { ChannelsConfig } from '../../config/schema.js';
import { ownerPromptText } from '../approvals.js';
import type { ChatAdapter, ChatCore, IncomingChat, ReceiveResult } from '../chat.js';
import { backoffMs, sleep } from '../connection.js';
import type { OutboundMessage } from '../contract.js';
import { boltLogger } from './bolt-logger.js';
import { describeSlackError, isAuthError, toDeliveryError } from './errors.js';
import { HubRouteReceiver, registerSlackRoute } from './http.js';
import { normalizeCommand, normalizeEvent, type BotIdentity, type SlackIncoming } from './normalize.js';
import { receiveWithFiles } from '../inbound-files.js';
import { slackFiles } from './files.js';
import { SlackSender } from './send.js';
import { SlackSocket } from './socket.js';

/*
 * The Slack channel (@slack/bolt). Socket Mode by default: an outbound websocket, no public URL.
 * HTTP mode: signed events posted to a route on the hub (see http.ts). Both feed the same listeners:
 * normalize (types.ts, normalize.ts) → the shared core's receive (access control, pairing, Inbox) →
 * replies through the core's ledger (send.ts). Connection state: connected only after auth.test and
 * the socket's hello (or, in HTTP mode, after auth.test).
 */

type SlackConfig = ChannelsConfig['slack'];
/** Threads the bot was addressed in; later messages there count as replies to it (no mention needed). */
const THREAD_TTL_S = 7 * 24 * 3600;
const threadKey = (team: string, channel: string, ts: string) => `bulwark:slack:thread:${team}:${channel}:${ts}`;

const slackId = z.string().regex(/^[A-Z0-9]{2,32}$/);
const authTestSchema = z.object({ user_id: slackId, team_id: slackId, bot_id: slackId.optional() });

interface Tokens { bot: string; app?: string | undefined; signing?: string | undefined }

async function readTokens(core: ChatCore, cfg: SlackConfig): Promise<Tokens> {
  const bot = await core.secret('slack.bot_token');
  if (!bot) throw new Error('no bot token: store the Bot User OAuth Token (xoxb-…) with `bulwark secret add slack.bot_token`');
  if (cfg.mode === 'socket') {
    const app = await core.secret('slack.app_token');
    if (!app) throw new Error('Socket Mode needs the app-level token (xapp-…, scope connections:write): `bulwark secret add slack.app_token`, or set [channels.slack] mode = "http"');
    return { bot, app };
  }
  const signing = await core.secret('slack.signing_secret');
  if (!signing) throw new Error('HTTP mode needs the signing secret (Basic Information → App Credentials): `bulwark secret add slack.signing_secret`');
  return { bot, signing };
}

function clientOptions(cfg: SlackConfig) {
  // No library retries: a retried chat.postMessage is a duplicate reply. The ledger decides instead.
  return { ...(cfg.api_url ? { slackApiUrl: cfg.api_url } : {}), retryConfig: { retries: 0 }, rejectRateLimitedCalls: true, timeout: 20_000 };
}

class SlackAdapter implements ChatAdapter {
  readonly name = 'slack';
  private readonly web: InstanceType<typeof webApi.WebClient>;
  private readonly sender: SlackSender;
  private readonly abort = new AbortController();
  private app: App | undefined;
  private socket: SlackSocket | undefined;
  private identity: BotIdentity | undefined;

  constructor(private readonly core: ChatCore, private readonly cfg: SlackConfig, private readonly tokens: Tokens) {
    this.web = new webApi.WebClient(tokens.bot, { ...clientOptions(cfg), logger: boltLogger(core.logger, (s) => core.scrub(s)) });
    this.sender = new SlackSender(core, this.web, (detail) => core.state.error(`sending: ${detail}`));
    // In the background: createAdapter returns at once and the status tells how far it got.
    void this.start().catch((err: Error) => core.state.error(core.scrub(`could not start: ${err.message}`)));
  }

  status() { return this.core.state.status(); }

  send(out: OutboundMessage): Promise<void> { return this.sender.send(out); }

  /** Each owner gets a pending request in the app's DM (a user id as channel); decided with `/bulwark approve ID`. */
  async promptOwners(req: ApprovalRequest): Promise<void> {
    await this.core.promptEachOwner(req, /^[UW][A-Z0-9]{2,}$/, async (owner) => {
      await this.sender.notice({ kind: 'channel', channel: owner }, ownerPromptText(req, `Decide with /bulwark approve ${req.id} or /bulwark deny ${req.id}.`))
        .catch((err: unknown) => { throw toDeliveryError(err); });
    });
  }

  registerRoutes(server: FastifyInstance): void {
    if (this.cfg.mode !== 'http') return;
    registerSlackRoute(server, { path: this.cfg.events_path, signingSecret: this.tokens.signing!, app: () => this.app, logger: this.core.logger });
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.socket?.stop();
    this.core.close();
  }

  private async start(): Promise<void> {
    const identity = await this.authenticate();
    if (!identity) return;
    this.identity = identity;
    const logger = boltLogger(this.core.logger, (s) => this.core.scrub(s));
    const receiver = this.cfg.mode === 'socket'
      ? new SocketModeReceiver({ appToken: this.tokens.app!, logger, autoReconnectEnabled: false, installerOptions: { clientOptions: { ...(this.cfg.api_url ? { slackApiUrl: this.cfg.api_url } : {}), retryConfig: { retries: 0 } } } })
      : new HubRouteReceiver();
    // botId + botUserId given: Bolt skips its own auth.test (whose failure would be an unhandled rejection).
    const app = new App({ token: this.tokens.bot, botId: identity.botId, botUserId: identity.userId, receiver, logger, clientOptions: clientOptions(this.cfg) });
    app.error(async (err) => { throw err; });
    app.event('message', (args) => this.onEvent(args));
    app.event('app_mention', (args) => this.onEvent(args));
    app.command(/^\/[a-z0-9_-]+$/, (args) => this.onCommand(args));
    this.app = app;
    if (this.abort.signal.aborted) return;
    if (receiver instanceof SocketModeReceiver) {
      this.socket = new SlackSocket({ receiver, app, state: this.core.state, logger: this.core.logger, baseDelayMs: 1000, maxDelayMs: 60_000, helloTimeoutMs: 30_000 });
      await this.socket.start();
    } else {
      this.core.state.connected(`HTTP events at ${this.cfg.events_path}`);
    }
  }

  /** auth.test until it answers; a bad token stops here with one status line (no loop). */
  private async authenticate(): Promise<BotIdentity | undefined> {
    for (let attempt = 0; !this.abort.signal.aborted; attempt++) {
      this.core.state.connecting('checking the bot token (auth.test)');
      try {
        const r = authTestSchema.safeParse(await this.web.auth.test());
        if (!r.success) throw new Error('auth.test answered without user_id/team_id');
        if (!r.data.bot_id) { this.core.state.error('slack.bot_token is not a bot token: use the Bot User OAuth Token (xoxb-…)'); return undefined; }
        return { userId: r.data.user_id, botId: r.data.bot_id, teamId: r.data.team_id };
      } catch (err) {
        if (isAuthError(err)) { this.core.state.error(`auth.test: ${describeSlackError(err)}`); return undefined; }
        this.core.state.disconnected(this.core.scrub(`auth.test: ${describeSlackError(err)}`));
        await sleep(backoffMs(attempt), this.abort.signal);
      }
    }
    return undefined;
  }

  private async onEvent({ event }: SlackEventMiddlewareArgs<'message' | 'app_mention'> & AllMiddlewareArgs): Promise<void> {
    const id = this.identity!;
    const n = normalizeEvent(event, id);
    if (!n.ok) {
      this.core.logger.debug({ reason: n.reason }, 'Slack event dropped');
      return;
    }
    const m = n.msg;
    // Nothing to answer (a bare @mention).
    if (!m.text && !m.files) { this.core.logger.debug({ chatId: m.chatId }, 'Slack message without text dropped'); return; }
    const replyToBot = m.threadTs !== undefined && (m.parentUserId === id.userId || (await this.core.redis.exists(threadKey(id.teamId, m.channel, m.threadTs))) === 1);
    // Files are fetched only after access control (receiveWithFiles admits first).
    const r = await receiveWithFiles(this.core, this.incoming(m, replyToBot), {
      notice: (text) => this.sender.notice(m.target, text),
      typing: () => this.sender.working(id.teamId, m.messageId, m.target),
    }, slackFiles(m.files ?? [], this.tokens.bot, this.cfg.api_url));
    if (r.outcome === 'accepted' && m.chatType === 'group' && m.target.kind === 'channel' && m.target.threadTs) {
      await this.core.redis.set(threadKey(id.teamId, m.channel, m.target.threadTs), '1', 'EX', THREAD_TTL_S);
    }
  }

  /** Slash command: acknowledged (within Slack's 3 s) once the message is in the Inbox; the answer follows through the queue. */
  private async onCommand({ command, ack }: SlackCommandMiddlewareArgs & AllMiddlewareArgs): Promise<void> {
    const n = normalizeCommand(command);
    if (!n.ok) { this.core.logger.debug({ reason: n.reason }, 'Slack command dropped'); await ack(); return; }
    if (!n.msg.text) { await ack({ response_type: 'ephemeral', text: `Usage: ${command.command} your question (or ${command.command} new for a fresh conversation)` }); return; }
    let notice: string | undefined;
    const io = { notice: async (text: string) => { notice = text; } };
    // `/bulwark approve ID`: the core's /approve (Slack keeps a bare "/approve" for its own commands).
    const incoming = this.incoming(/^(approve|deny)(\s|$)/i.test(n.msg.text) ? { ...n.msg, text: `/${n.msg.text}` } : n.msg, false);
    if (/^(new|reset)$/i.test(n.msg.text)) {
      // `/bulwark new`: a fresh conversation for this DM (or this private channel conversation). Admitted senders only.
      const a = await this.core.admit(incoming, io);
      if ('ok' in a) await this.core.newConversation(incoming.accountId, incoming.chatId);
      await ack(notice ? { response_type: 'ephemeral', text: notice } : 'ok' in a ? { response_type: 'ephemeral', text: 'Started a fresh conversation.' } : undefined);
      return;
    }
    const r: ReceiveResult = await this.core.receive(incoming, io);
    if (notice) await ack({ response_type: 'ephemeral', text: notice });
    else if (r.outcome === 'accepted' || r.outcome === 'duplicate') await ack({ response_type: 'ephemeral', text: 'Working on it…' });
    else await ack();
  }

  private incoming(m: SlackIncoming, replyToBot: boolean): IncomingChat {
    return {
      accountId: this.identity!.teamId, chatId: m.chatId, messageId: m.messageId, chatType: m.chatType, groupId: m.channel,
      sender: { id: m.senderId, ...(m.senderName ? { name: m.senderName } : {}), isBot: m.senderIsBot },
      fromSelf: m.fromSelf, mentioned: m.mentioned, replyToBot, isCommand: m.isCommand, text: m.text,
    };
  }
}

/** Called by startChatChannels when [channels.slack] is enabled. Returns at once; connects in the background. */
export async function createAdapter(core: ChatCore): Promise<ChatAdapter> {
  const cfg = core.config as SlackConfig;
  return new SlackAdapter(core, cfg, await readTokens(core, cfg));
}

/** `bulwark channels test slack`: auth.test with the stored bot token. */
export async function probe(core: ChatCore): Promise<{ ok: boolean; detail: string }> {
  const cfg = core.config as SlackConfig;
  const token = await core.secret('slack.bot_token');
  if (!token) return { ok: false, detail: 'no bot token: `bulwark secret add slack.bot_token`' };
  const web = new webApi.WebClient(token, { ...clientOptions(cfg), logger: boltLogger(core.logger, (s) => core.scrub(s)) });
  try {
    const r = authTestSchema.passthrough().parse(await web.auth.test()) as z.infer<typeof authTestSchema> & { team?: string; user?: string };
    return { ok: true, detail: `auth.test ok: bot @${r.user ?? r.user_id} in workspace ${r.team ?? r.team_id} (${cfg.mode} mode)` };
  } catch (err) {
    return { ok: false, detail: core.scrub(describeSlackError(err)) };
  }
}

/** For tests: the adapter type behind createAdapter. */
export type { SlackAdapter };
