import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';

/*
 * A stand-in for Discord's REST API (v10) and gateway websocket, speaking the real wire protocol so
 * the real discord.js connects to it unchanged: HELLO → IDENTIFY → READY + GUILD_CREATE, heartbeats
 * and ACKs, dispatches with sequence numbers, RESUME (replaying what was missed) → RESUMED, INVALID
 * SESSION (d:false) forcing a fresh IDENTIFY, and the 4004/4014 close codes. Every REST call is
 * recorded so tests assert on what the bot really sent. Frames are plain JSON text (no zlib-sync).
 */

const EPOCH = 1_420_070_400_000n;
let counter = 0n;
/** A valid, increasing snowflake (discord.js derives timestamps from it). */
export function snowflake(): string {
  return String(((BigInt(Date.now()) - EPOCH) << 22n) + (counter++ % 4096n));
}

/** A file part of a multipart request (`files[N]`), as Discord receives it. */
export interface Upload { field: string; filename: string; contentType: string; bytes: Buffer }
/** `body` is the JSON body, or a multipart request's `payload_json`; `files` its file parts. */
export interface RestCall { method: string; path: string; body: any; files?: Upload[]; auth: string | undefined; at: number; status?: number }
export interface DiscordUser { id: string; username: string; global_name?: string; discriminator: string; bot?: boolean; avatar: null }

/** One scripted failure for the next request whose "METHOD /path" matches. */
interface Failure { match: RegExp; status: number; retryAfter?: number; times: number; upload?: RegExp | undefined }

interface Session { id: string; seq: number; events: Array<{ s: number; t: string; d: unknown }>; socket?: WebSocket }

const MESSAGE_CONTENT_INTENT = 1 << 15;

export interface DiscordStandIn {
  /** REST base for discord.js: `rest: { api: standIn.api, version: '10' }`. */
  api: string;
  token: string;
  bot: DiscordUser;
  applicationId: string;
  guildId: string;
  /** Text channel, a thread in it, and the bot's managed role (what "@Bulwark" role mentions use). */
  channelId: string;
  threadId: string;
  botRoleId: string;
  calls: RestCall[];
  /** Counts of gateway handshakes, to prove resume vs fresh identify. */
  gateway: { identifies: number; resumes: number; resumed: number; invalidSessions: number; connections: number };
  /** Gateway behaviour switches. */
  options: { rejectMessageContent: boolean; invalidToken: boolean; failResume: boolean };
  /** Sends a dispatch to the live session (or queues it for replay when the bot is disconnected). */
  dispatch(t: string, d: unknown): void;
  /** A user message in a channel; returns the raw payload sent. */
  userMessage(opts: { channelId: string; author: DiscordUser; content: string; dm?: boolean; mentions?: DiscordUser[]; mentionRoles?: string[]; everyone?: boolean; reference?: { messageId: string; author: DiscordUser }; id?: string; attachments?: Array<Record<string, unknown>> }): Record<string, any>;
  /** Serves `bytes` like Discord's CDN (no auth); returns the message's attachment object. */
  addFile(bytes: Buffer, filename: string, contentType?: string): Record<string, unknown>;
  /** A `/bulwark ask text:` slash command; returns the interaction payload. */
  slashCommand(opts: { channelId: string; user: DiscordUser; text: string; dm?: boolean }): Record<string, any>;
  /** Closes the bot's socket abnormally (as a network drop does); discord.js then tries to resume. */
  dropConnection(code?: number): void;
  /** `upload`: only requests carrying a file whose name matches (text messages to the same route go through). */
  failNext(match: RegExp, status: number, opts?: { retryAfter?: number; times?: number; upload?: RegExp }): void;
  /** The DM channel POST /users/@me/channels opens (or reopens) with this user. */
  dmChannelOf(userId: string): string;
  /** Accepted (200) bot messages that carried files, with the channel they went to. */
  uploads(): Array<{ channelId: string; call: RestCall; files: Upload[] }>;
  /** Resolves once the bot has a live, identified or resumed session. */
  waitConnected(timeoutMs?: number): Promise<void>;
  /** Messages the bot posted to a channel that the stand-in accepted (200). */
  messagesTo(channelId: string): RestCall[];
  close(): Promise<void>;
}

export function user(name: string, extra: Partial<DiscordUser> = {}): DiscordUser {
  return { id: snowflake(), username: name, global_name: name, discriminator: '0', avatar: null, ...extra };
}

/** A JSON body, or multipart/form-data as Discord takes uploads: `payload_json` plus `files[N]` parts (Node's WHATWG parser). */
async function readBody(req: IncomingMessage): Promise<{ body: any; files?: Upload[] }> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const buf = Buffer.concat(chunks);
  const ct = req.headers['content-type'] ?? '';
  if (ct.includes('multipart/form-data')) {
    const form = await new Request('http://x', { method: 'POST', headers: { 'content-type': ct }, body: buf }).formData();
    const files: Upload[] = [];
    let body: any;
    for (const [field, v] of form.entries()) {
      if (typeof v === 'string') { if (field === 'payload_json') body = JSON.parse(v); continue; }
      files.push({ field, filename: v.name, contentType: v.type, bytes: Buffer.from(await v.arrayBuffer()) });
    }
    return { body, files };
  }
  const raw = buf.toString('utf8');
  if (!raw) return { body: undefined };
  try { return { body: JSON.parse(raw) }; } catch { return { body: raw }; }
}

export async function startDiscordStandIn(opts: { token?: string } = {}): Promise<DiscordStandIn> {
  const token = opts.token ?? 'standin-discord-token.0123456789';
  const bot = user('Bulwark', { bot: true });
  const applicationId = bot.id;
  const guildId = snowflake();
  const channelId = snowflake();
  const threadId = snowflake();
  const botRoleId = snowflake();
  const calls: RestCall[] = [];
  const failures: Failure[] = [];
  const sessions = new Map<string, Session>();
  const gateway = { identifies: 0, resumes: 0, resumed: 0, invalidSessions: 0, connections: 0 };
  const options = { rejectMessageContent: false, invalidToken: false, failResume: false };
  let live: Session | undefined;
  const messages = new Map<string, Record<string, any>>();
  const cdn = new Map<string, Buffer>();

  const send = (res: ServerResponse, status: number, body?: unknown, headers: Record<string, string> = {}) => {
    const call = (res as ServerResponse & { call?: RestCall }).call;
    if (call) call.status = status;
    res.writeHead(status, { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers });
    res.end(body === undefined ? undefined : JSON.stringify(body));
  };
  const dmChannels = new Map<string, string>();
  const botMessage = (channel: string, body: any, extra: Record<string, unknown> = {}, files: Upload[] = []) => {
    const m = {
      id: snowflake(), channel_id: channel, author: bot, content: body?.content ?? '', timestamp: new Date().toISOString(),
      edited_timestamp: null, tts: false, mention_everyone: false, mentions: [], mention_roles: [],
      attachments: files.map((f) => ({ id: snowflake(), filename: f.filename, size: f.bytes.length, content_type: f.contentType, url: `${base}/attachments/${channel}/${snowflake()}/${f.filename}`, proxy_url: `${base}/attachments/x` })), embeds: [],
      pinned: false, type: body?.message_reference ? 19 : 0, flags: body?.flags ?? 0,
      ...(body?.message_reference ? { message_reference: { ...body.message_reference, channel_id: channel } } : {}), ...extra,
    };
    messages.set(m.id, m);
    return m;
  };

  async function onRest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    const path = decodeURIComponent(url.pathname).replace(/^\/api\/v10/, '');
    const method = req.method ?? 'GET';
    const { body, files } = await readBody(req);
    const auth = req.headers.authorization;
    const call: RestCall = { method, path, body, ...(files ? { files } : {}), auth, at: Date.now() };
    calls.push(call);
    (res as ServerResponse & { call?: RestCall }).call = call;
    // The CDN: signed links, no token.
    const file = method === 'GET' ? cdn.get(url.pathname) : undefined;
    if (file) { call.status = 200; res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(file.length) }).end(file); return; }
    const f = failures.find((x) => x.match.test(`${method} ${path}`) && (!x.upload || (files ?? []).some((u) => x.upload!.test(u.filename))));
    if (f) {
      if (--f.times <= 0) failures.splice(failures.indexOf(f), 1);
      if (f.status === 429) return send(res, 429, { message: 'You are being rate limited.', retry_after: f.retryAfter ?? 1, global: false }, { 'retry-after': String(f.retryAfter ?? 1) });
      return send(res, f.status, { message: `stand-in failure ${f.status}`, code: 0 });
    }
    const isWebhook = path.startsWith('/webhooks/') || path.startsWith('/interactions/');
    if (!isWebhook && auth !== `Bot ${token}`) return send(res, 401, { message: '401: Unauthorized', code: 0 });
    let m: RegExpMatchArray | null;
    if (method === 'GET' && path === '/gateway/bot') {
      const port = (server.address() as AddressInfo).port;
      return send(res, 200, { url: `ws://127.0.0.1:${port}/gateway`, shards: 1, session_start_limit: { total: 1000, remaining: 999, reset_after: 0, max_concurrency: 1 } });
    }
    if (method === 'GET' && path === '/users/@me') return send(res, 200, bot);
    if (method === 'POST' && path === '/users/@me/channels') {
      const recipient = String(body?.recipient_id ?? '');
      if (!/^\d{15,22}$/.test(recipient)) return send(res, 400, { message: 'Invalid Form Body', code: 50035 });
      return send(res, 200, { id: standIn.dmChannelOf(recipient), type: 1, last_message_id: null, flags: 0, recipients: [{ id: recipient, username: 'someone', discriminator: '0', avatar: null }] });
    }
    if ((m = path.match(/^\/applications\/(\d+)\/(?:guilds\/\d+\/)?commands$/))) {
      const list = (Array.isArray(body) ? body : [body]).map((c: any) => ({ id: snowflake(), application_id: m![1], version: snowflake(), type: 1, ...c }));
      return send(res, 200, method === 'PUT' ? list : list[0]);
    }
    if (method === 'POST' && (m = path.match(/^\/channels\/(\d+)\/messages$/))) return send(res, 200, botMessage(m[1]!, body, {}, files));
    if (method === 'POST' && path.match(/^\/channels\/\d+\/typing$/)) return send(res, 204);
    if (method === 'PATCH' && (m = path.match(/^\/channels\/(\d+)\/messages\/(\d+)$/))) {
      const old = messages.get(m[2]!);
      return old ? send(res, 200, { ...old, ...body, edited_timestamp: new Date().toISOString() }) : send(res, 404, { message: 'Unknown Message', code: 10008 });
    }
    if (method === 'POST' && path.match(/^\/interactions\/\d+\/[^/]+\/callback$/)) return send(res, 204);
    if ((m = path.match(/^\/webhooks\/(\d+)\/([^/]+)(\/messages\/@original)?$/))) {
      return send(res, 200, botMessage(channelId, body, { webhook_id: m[1], application_id: m[1] }, files));
    }
    return send(res, 404, { message: `stand-in: no route for ${method} ${path}`, code: 0 });
  }

  const server: Server = createServer((req, res) => { onRest(req, res).catch((err) => send(res, 500, { message: String(err) })); });
  const wss = new WebSocketServer({ noServer: true });
  server.on('upgrade', (req, socket, head) => {
    if (!(req.url ?? '').startsWith('/gateway')) { socket.destroy(); return; }
    wss.handleUpgrade(req, socket, head, (ws) => onSocket(ws));
  });

  const guildCreate = () => ({
    id: guildId, name: 'Stand-in Guild', icon: null, owner_id: snowflake(), afk_channel_id: null, afk_timeout: 300,
    verification_level: 0, default_message_notifications: 0, explicit_content_filter: 0, features: [], mfa_level: 0,
    system_channel_id: null, system_channel_flags: 0, rules_channel_id: null, vanity_url_code: null, description: null,
    banner: null, premium_tier: 0, preferred_locale: 'en-US', public_updates_channel_id: null, nsfw_level: 0,
    premium_progress_bar_enabled: false, joined_at: new Date().toISOString(), large: false, unavailable: false, member_count: 2,
    roles: [
      { id: guildId, name: '@everyone', color: 0, hoist: false, position: 0, permissions: '1024', managed: false, mentionable: false, flags: 0 },
      { id: botRoleId, name: 'Bulwark', color: 0, hoist: false, position: 1, permissions: '277025508352', managed: true, mentionable: false, flags: 0, tags: { bot_id: bot.id } },
    ],
    emojis: [], stickers: [], voice_states: [], presences: [], stage_instances: [], guild_scheduled_events: [],
    members: [{ user: bot, roles: [botRoleId], joined_at: new Date().toISOString(), deaf: false, mute: false, flags: 0 }],
    channels: [{ id: channelId, type: 0, guild_id: guildId, name: 'general', position: 0, permission_overwrites: [], parent_id: null, nsfw: false, topic: null, last_message_id: null, rate_limit_per_user: 0 }],
    threads: [{ id: threadId, type: 11, guild_id: guildId, parent_id: channelId, name: 'a thread', owner_id: bot.id, last_message_id: null, message_count: 0, member_count: 1, rate_limit_per_user: 0, thread_metadata: { archived: false, auto_archive_duration: 1440, archive_timestamp: new Date().toISOString(), locked: false } }],
  });

  function emit(session: Session, t: string, d: unknown): void {
    const ev = { s: ++session.seq, t, d };
    session.events.push(ev);
    if (session.socket?.readyState === 1) session.socket.send(JSON.stringify({ op: 0, ...ev }));
  }

  function onSocket(ws: WebSocket): void {
    gateway.connections++;
    ws.send(JSON.stringify({ op: 10, d: { heartbeat_interval: 41_250 } }));
    ws.on('message', (raw) => {
      let p: any;
      try { p = JSON.parse(String(raw)); } catch { ws.close(4002, 'Decode error'); return; }
      if (p.op === 1) { ws.send(JSON.stringify({ op: 11 })); return; }
      if (p.op === 2) {
        gateway.identifies++;
        if (options.invalidToken || p.d?.token !== token) { ws.close(4004, 'Authentication failed.'); return; }
        if (options.rejectMessageContent && (Number(p.d?.intents) & MESSAGE_CONTENT_INTENT)) { ws.close(4014, 'Disallowed intent(s).'); return; }
        const port = (server.address() as AddressInfo).port;
        const session: Session = { id: snowflake(), seq: 0, events: [], socket: ws };
        sessions.set(session.id, session);
        live = session;
        emit(session, 'READY', {
          v: 10, user: bot, guilds: [{ id: guildId, unavailable: true }], session_id: session.id,
          resume_gateway_url: `ws://127.0.0.1:${port}/gateway-resume`, shard: [0, 1], application: { id: applicationId, flags: 0 },
          private_channels: [], relationships: [], presences: [], user_settings: {}, guild_join_requests: [], geo_ordered_rtc_regions: [],
        });
        emit(session, 'GUILD_CREATE', guildCreate());
        return;
      }
      if (p.op === 6) {
        gateway.resumes++;
        const session = sessions.get(p.d?.session_id);
        if (p.d?.token !== token) { ws.close(4004, 'Authentication failed.'); return; }
        if (!session || options.failResume) {
          gateway.invalidSessions++;
          if (session) sessions.delete(session.id);
          ws.send(JSON.stringify({ op: 9, d: false }));
          return;
        }
        session.socket = ws;
        live = session;
        for (const ev of session.events.filter((e) => e.s > Number(p.d.seq))) ws.send(JSON.stringify({ op: 0, ...ev }));
        gateway.resumed++;
        emit(session, 'RESUMED', {});
      }
    });
    ws.on('close', () => { if (live?.socket === ws) live.socket = undefined; });
  }

  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const standIn: DiscordStandIn = {
    api: `${base}/api`, token, bot, applicationId, guildId, channelId, threadId, botRoleId, calls, gateway, options,
    dispatch(t, d) {
      if (!live) throw new Error('stand-in: no gateway session yet');
      emit(live, t, d);
    },
    userMessage(o) {
      const payload: Record<string, any> = {
        id: o.id ?? snowflake(), channel_id: o.channelId, author: o.author, content: o.content, timestamp: new Date().toISOString(),
        edited_timestamp: null, tts: false, mention_everyone: o.everyone ?? false, mentions: o.mentions ?? [], mention_roles: o.mentionRoles ?? [],
        attachments: o.attachments ?? [], embeds: [], pinned: false, type: o.reference ? 19 : 0, flags: 0, nonce: snowflake(),
        ...(o.dm ? { channel_type: 1 } : { guild_id: guildId, channel_type: o.channelId === threadId ? 11 : 0, member: { roles: [], joined_at: new Date().toISOString(), deaf: false, mute: false, flags: 0 } }),
        ...(o.reference ? {
          message_reference: { message_id: o.reference.messageId, channel_id: o.channelId, ...(o.dm ? {} : { guild_id: guildId }) },
          referenced_message: { id: o.reference.messageId, channel_id: o.channelId, author: o.reference.author, content: '', timestamp: new Date().toISOString(), edited_timestamp: null, tts: false, mention_everyone: false, mentions: [], mention_roles: [], attachments: [], embeds: [], pinned: false, type: 0 },
        } : {}),
      };
      this.dispatch('MESSAGE_CREATE', payload);
      return payload;
    },
    addFile(bytes, filename, contentType) {
      const id = snowflake();
      const path = `/attachments/${channelId}/${id}/${filename}`;
      cdn.set(path, bytes);
      return { id, filename, size: bytes.length, url: `${base}${path}?ex=1&is=2&hm=abc`, proxy_url: `${base}${path}`, ...(contentType ? { content_type: contentType } : {}) };
    },
    slashCommand(o) {
      const channel = o.dm
        ? { id: o.channelId, type: 1, recipients: [o.user], last_message_id: null, flags: 0 }
        : { id: o.channelId, type: 0, guild_id: guildId, name: 'general', position: 0, permission_overwrites: [], parent_id: null, nsfw: false, flags: 0 };
      const payload: Record<string, any> = {
        id: snowflake(), application_id: applicationId, type: 2, token: `interaction-token-${snowflake()}`, version: 1, locale: 'en-US',
        app_permissions: '2248473465835073', entitlements: [], authorizing_integration_owners: { 0: guildId }, context: o.dm ? 1 : 0,
        channel_id: o.channelId, channel,
        data: { id: snowflake(), name: 'bulwark', type: 1, options: [{ name: 'ask', type: 1, options: [{ name: 'text', type: 3, value: o.text }] }] },
        ...(o.dm ? { user: o.user } : { guild_id: guildId, guild_locale: 'en-US', member: { user: o.user, roles: [], permissions: '2248473465835073', joined_at: new Date().toISOString(), deaf: false, mute: false, flags: 0 } }),
      };
      this.dispatch('INTERACTION_CREATE', payload);
      return payload;
    },
    dropConnection(code = 4000) {
      // 4000 ("unknown error") is a close after which Discord expects a RESUME.
      live?.socket?.close(code, 'stand-in dropped the connection');
    },
    failNext(match, status, o = {}) {
      failures.push({ match, status, ...(o.retryAfter !== undefined ? { retryAfter: o.retryAfter } : {}), times: o.times ?? 1, upload: o.upload });
    },
    dmChannelOf(userId) {
      let id = dmChannels.get(userId);
      if (!id) { id = snowflake(); dmChannels.set(userId, id); }
      return id;
    },
    uploads() {
      return calls.filter((c) => c.method !== 'GET' && c.status === 200 && (c.files?.length ?? 0) > 0)
        .map((call) => ({ channelId: /^\/channels\/(\d+)\/messages$/.exec(call.path)?.[1] ?? `webhook:${call.path}`, call, files: call.files! }));
    },
    async waitConnected(timeoutMs = 10_000) {
      const end = Date.now() + timeoutMs;
      while (!(live?.socket?.readyState === 1)) {
        if (Date.now() > end) throw new Error('stand-in: the bot did not connect to the gateway');
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    messagesTo(channel) {
      return calls.filter((c) => c.method === 'POST' && c.path === `/channels/${channel}/messages` && c.status === 200);
    },
    async close() {
      for (const c of wss.clients) c.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  return standIn;
}
