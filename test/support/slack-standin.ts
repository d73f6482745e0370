import { createHmac, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';

/*
 * A stand-in of Slack for tests, speaking the real wire protocol so the real @slack/bolt talks to it
 * unchanged: the Web API over HTTP (form-encoded or JSON bodies, `{ok, error}` answers, 429 with
 * Retry-After), the Socket Mode websocket (hello, envelopes, acks, pings, dropped connections), and a
 * helper that posts properly signed HTTP events. Every Web API call is recorded. File uploads work as
 * files.uploadV2 uses them: files.getUploadURLExternal hands out an upload URL on this server, the
 * bytes are POSTed there (multipart, recorded as the call "upload"), files.completeUploadExternal
 * shares them into a channel or thread (recorded in `shared`).
 */

export const BOT_TOKEN = 'xoxb-standin-bot-token';
export const APP_TOKEN = 'xapp-standin-app-token';
export const SIGNING_SECRET = 'standin-signing-secret';
export const BOT_USER_ID = 'UBOT0001';
export const BOT_ID = 'BBOT0001';
export const TEAM_ID = 'TTEAM001';

export interface ApiCall { method: string; args: Record<string, unknown>; auth?: string; at: number; /** What the stand-in answered. */ result?: Record<string, unknown> }
export interface Ack { envelope_id: string; payload?: unknown }

/** What the next call(s) of a method answer instead of the normal reply. */
export type Failure = { status: 429; retryAfter: number } | { error: string };

/** A file shared by files.completeUploadExternal: what a user would see in the channel. */
export interface SharedFile { id: string; filename: string; title?: string; bytes: Buffer; channel: string; threadTs?: string; at: number }

export interface SlackStandIn {
  /** http://127.0.0.1:PORT/api/ — the WebClient's slackApiUrl. */
  apiUrl: string;
  calls: ApiCall[];
  /** Calls of one method, in order. */
  callsOf(method: string): ApiCall[];
  /** The next `times` calls of `method` fail this way (after `skip` calls that succeed). "upload" is the POST of a file's bytes. */
  failNext(method: string, failure: Failure, times?: number, skip?: number): void;
  /** Files shared into channels (files.completeUploadExternal), in order. */
  shared: SharedFile[];
  /** Tokens that auth as valid; remove one to simulate a revoked token. */
  validTokens: Set<string>;
  /** Websocket connections opened so far (reconnects add up), and the ones open now. */
  socketsOpened(): number;
  socketsOpen(): number;
  /** Sends an events_api envelope; resolves with the ack (rejects after `timeoutMs` without one). */
  sendEvent(event: Record<string, unknown>, opts?: { envelopeId?: string; retryAttempt?: number; eventId?: string; timeoutMs?: number }): Promise<Ack>;
  /** Sends a slash_commands envelope; resolves with the ack. */
  sendSlashCommand(payload: Record<string, string>, opts?: { envelopeId?: string; timeoutMs?: number }): Promise<Ack>;
  /** Sends raw text over every open socket (malformed-envelope tests). */
  sendRaw(text: string): void;
  /** Ends every open socket abruptly (no close frame), as a network drop would. */
  dropConnections(): void;
  /** The open sockets stay open but go quiet: no pongs, no events (a half-dead connection). */
  silenceConnections(): void;
  /** Serves `bytes` as a private file (like files.slack.com: Bearer token required); returns the event's file object. */
  addFile(bytes: Buffer, name: string, mimetype: string): Record<string, unknown>;
  /** Every file download request: its path and the token it carried. */
  downloads: Array<{ path: string; host: string; auth?: string }>;
  /** Waits until `fn` is true; throws with `what` after the deadline. */
  waitFor(fn: () => boolean, what: string, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

let tsCounter = 0;
/** A Slack-style message timestamp, unique and increasing. */
export function nextTs(): string {
  tsCounter += 1;
  return `${1_700_000_000 + tsCounter}.${String(tsCounter).padStart(6, '0')}`;
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** The bytes POSTed to an upload URL: a multipart form (the WebClient's way, parsed by Node's own parser) or the raw body. */
async function uploadedBytes(body: Buffer, contentType: string | undefined): Promise<{ bytes: Buffer; filename?: string }> {
  if (!contentType?.startsWith('multipart/form-data')) return { bytes: body };
  const form = await new Request('http://x', { method: 'POST', headers: { 'content-type': contentType }, body }).formData();
  const files = [...form.values()].flatMap((v) => (typeof v === 'string' ? [] : [v]));
  if (files.length !== 1) throw new Error(`expected one file part, got ${files.length}`);
  return { bytes: Buffer.from(await files[0]!.arrayBuffer()), filename: files[0]!.name };
}

function parseArgs(body: string, contentType: string | undefined): Record<string, unknown> {
  if (!body) return {};
  if (contentType?.includes('application/json')) return JSON.parse(body) as Record<string, unknown>;
  return Object.fromEntries(new URLSearchParams(body));
}

export async function startSlackStandIn(): Promise<SlackStandIn> {
  const calls: ApiCall[] = [];
  const callOf = new WeakMap<ServerResponse, ApiCall>();
  const failures = new Map<string, Array<Failure | 'pass'>>();
  /** Upload slots from files.getUploadURLExternal, by file id; `bytes` once POSTed. */
  const uploads = new Map<string, { filename: string; length: number; bytes?: Buffer }>();
  const shared: SharedFile[] = [];
  const validTokens = new Set([BOT_TOKEN, APP_TOKEN]);
  const sockets = new Set<WebSocket>();
  const pendingAcks = new Map<string, (a: Ack) => void>();
  let opened = 0;
  let port = 0;
  const files = new Map<string, Buffer>();
  const downloads: SlackStandIn['downloads'] = [];

  // Like files.slack.com: the file for a valid bot token, Slack's sign-in page (HTTP 200) otherwise.
  const serveFile = (req: IncomingMessage, res: ServerResponse, path: string) => {
    const auth = req.headers.authorization?.replace(/^Bearer /, '');
    downloads.push({ path, host: req.headers.host ?? '', ...(auth ? { auth } : {}) });
    const bytes = files.get(path);
    if (!bytes) { res.writeHead(404).end(); return; }
    if (!auth || !validTokens.has(auth)) { res.writeHead(200, { 'content-type': 'text/html' }).end('<!DOCTYPE html><html><body>Sign in to Slack</body></html>'); return; }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(bytes.length) }).end(bytes);
  };

  const json = (res: ServerResponse, status: number, body: Record<string, unknown>, headers: Record<string, string> = {}) => {
    const call = callOf.get(res);
    if (call) call.result = body;
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
    res.end(JSON.stringify(body));
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname.startsWith('/files-pri/')) return serveFile(req, res, url.pathname);
    const upload = /^\/upload\/v1\/(F\w+)$/.exec(url.pathname);
    if (upload) return receiveUpload(req, res, upload[1]!);
    const method = url.pathname.replace(/^\/api\//, '');
    const args = parseArgs((await readBody(req)).toString('utf8'), req.headers['content-type']);
    const auth = req.headers.authorization?.replace(/^Bearer /, '') ?? (typeof args.token === 'string' ? args.token : undefined);
    const call: ApiCall = { method, args, ...(auth ? { auth } : {}), at: Date.now() };
    calls.push(call);
    callOf.set(res, call);

    const failure = nextFailure(method);
    if (failure) {
      if ('status' in failure) return json(res, 429, { ok: false, error: 'ratelimited' }, { 'retry-after': String(failure.retryAfter) });
      return json(res, 200, { ok: false, error: failure.error, ...(failure.error === 'missing_scope' ? { needed: 'files:write', provided: 'chat:write' } : {}) });
    }
    if (!auth) return json(res, 200, { ok: false, error: 'not_authed' });
    if (!validTokens.has(auth)) return json(res, 200, { ok: false, error: 'invalid_auth' });

    switch (method) {
      case 'auth.test':
        return json(res, 200, { ok: true, url: 'https://standin.slack.com/', team: 'Stand-in', user: 'bulwark', team_id: TEAM_ID, user_id: BOT_USER_ID, bot_id: BOT_ID, is_enterprise_install: false });
      case 'apps.connections.open':
        if (!auth.startsWith('xapp-')) return json(res, 200, { ok: false, error: 'not_allowed_token_type' });
        return json(res, 200, { ok: true, url: `ws://127.0.0.1:${port}/socket?ticket=${randomUUID()}` });
      case 'chat.postMessage': {
        const ts = nextTs();
        return json(res, 200, { ok: true, channel: args.channel, ts, message: { type: 'message', user: BOT_USER_ID, bot_id: BOT_ID, text: args.text, ts, ...(args.thread_ts ? { thread_ts: args.thread_ts } : {}) } });
      }
      case 'chat.postEphemeral':
        return json(res, 200, { ok: true, message_ts: nextTs() });
      case 'chat.update':
        return json(res, 200, { ok: true, channel: args.channel, ts: args.ts, text: args.text });
      case 'chat.delete':
        return json(res, 200, { ok: true, channel: args.channel, ts: args.ts });
      case 'files.getUploadURLExternal': {
        const length = Number(args.length);
        if (typeof args.filename !== 'string' || !args.filename || !Number.isInteger(length) || length <= 0) return json(res, 200, { ok: false, error: 'invalid_arguments' });
        const id = `F${randomUUID().replace(/-/g, '').slice(0, 10).toUpperCase()}`;
        uploads.set(id, { filename: args.filename, length });
        return json(res, 200, { ok: true, upload_url: `http://127.0.0.1:${port}/upload/v1/${id}`, file_id: id });
      }
      case 'files.completeUploadExternal': {
        let list: Array<{ id: string; title?: string }>;
        try { list = JSON.parse(String(args.files)) as typeof list; } catch { return json(res, 200, { ok: false, error: 'invalid_arguments' }); }
        if (!Array.isArray(list) || list.length === 0) return json(res, 200, { ok: false, error: 'invalid_arguments' });
        // As Slack: every file must have been uploaded in full; a slot is used once.
        for (const f of list) {
          const u = uploads.get(f.id);
          if (!u?.bytes || u.bytes.length !== u.length) return json(res, 200, { ok: false, error: 'file_not_found' });
        }
        const out = list.map((f) => {
          const u = uploads.get(f.id)!;
          uploads.delete(f.id);
          if (typeof args.channel_id === 'string') {
            shared.push({ id: f.id, filename: u.filename, ...(f.title ? { title: f.title } : {}), bytes: u.bytes!, channel: args.channel_id, ...(typeof args.thread_ts === 'string' ? { threadTs: args.thread_ts } : {}), at: Date.now() });
          }
          return { id: f.id, name: u.filename, title: f.title ?? u.filename, size: u.length };
        });
        return json(res, 200, { ok: true, files: out });
      }
      case 'reactions.add':
      case 'reactions.remove':
        return json(res, 200, { ok: true });
      default:
        return json(res, 200, { ok: false, error: 'unknown_method' });
    }
  };

  const nextFailure = (method: string): Failure | undefined => {
    const f = failures.get(method)?.shift();
    return f === 'pass' ? undefined : f;
  };

  /** Like files.slack.com's upload URL: the URL itself is the credential; the answer is plain text. */
  const receiveUpload = async (req: IncomingMessage, res: ServerResponse, id: string) => {
    const body = await readBody(req);
    const call: ApiCall = { method: 'upload', args: { file_id: id }, at: Date.now() };
    calls.push(call);
    const failure = nextFailure('upload');
    if (failure) {
      if ('status' in failure) { res.writeHead(429, { 'retry-after': String(failure.retryAfter) }).end(); return; }
      res.writeHead(500).end(failure.error);
      return;
    }
    const slot = uploads.get(id);
    if (!slot) { res.writeHead(404).end('unknown upload'); return; }
    const got = await uploadedBytes(body, req.headers['content-type']);
    slot.bytes = got.bytes;
    call.args = { file_id: id, length: got.bytes.length, ...(got.filename ? { filename: got.filename } : {}) };
    res.writeHead(200, { 'content-type': 'text/plain' }).end(`OK - ${got.bytes.length}`);
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: Error) => json(res, 500, { ok: false, error: `standin: ${err.message}` }));
  });
  // Pongs by hand, so a test can make a connection go silent while its TCP stays up.
  const wss = new WebSocketServer({ noServer: true, autoPong: false });
  const silenced = new WeakSet<WebSocket>();
  server.on('upgrade', (req, socket, head) => {
    if (!req.url?.startsWith('/socket')) { socket.destroy(); return; }
    wss.handleUpgrade(req, socket, head, (ws) => {
      opened += 1;
      sockets.add(ws);
      ws.on('close', () => sockets.delete(ws));
      ws.on('ping', (data) => { if (!silenced.has(ws)) ws.pong(data); });
      ws.on('error', () => sockets.delete(ws));
      ws.on('message', (data) => {
        let msg: Ack;
        try { msg = JSON.parse(String(data)) as Ack; } catch { return; }
        pendingAcks.get(msg.envelope_id)?.(msg);
      });
      ws.send(JSON.stringify({ type: 'hello', num_connections: 1, debug_info: { host: 'standin', approximate_connection_time: 18060 }, connection_info: { app_id: 'A0STANDIN' } }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
  // Slack pings every few seconds; the client closes a socket that stays silent past its server-ping timeout.
  const pinger = setInterval(() => { for (const ws of sockets) if (!silenced.has(ws)) ws.ping(); }, 5_000);

  const waitFor = async (fn: () => boolean, what: string, timeoutMs = 10_000) => {
    const end = Date.now() + timeoutMs;
    while (!fn()) {
      if (Date.now() > end) throw new Error(`stand-in: ${what} did not happen within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  const sendEnvelope = async (envelope: Record<string, unknown> & { envelope_id: string }, timeoutMs: number): Promise<Ack> => {
    await waitFor(() => [...sockets].some((s) => !silenced.has(s)), 'a socket connection');
    return new Promise<Ack>((resolve, reject) => {
      const timer = setTimeout(() => { pendingAcks.delete(envelope.envelope_id); reject(new Error(`no ack for envelope ${envelope.envelope_id} within ${timeoutMs} ms`)); }, timeoutMs);
      pendingAcks.set(envelope.envelope_id, (a) => { clearTimeout(timer); pendingAcks.delete(envelope.envelope_id); resolve(a); });
      for (const ws of sockets) if (!silenced.has(ws)) ws.send(JSON.stringify(envelope));
    });
  };

  return {
    apiUrl: `http://127.0.0.1:${port}/api/`,
    calls,
    callsOf: (method) => calls.filter((c) => c.method === method),
    shared,
    failNext: (method, failure, times = 1, skip = 0) => {
      const q = failures.get(method) ?? [];
      for (let i = 0; i < skip; i++) q.push('pass');
      for (let i = 0; i < times; i++) q.push(failure);
      failures.set(method, q);
    },
    validTokens,
    addFile: (bytes, name, mimetype) => {
      const id = `F${randomUUID().replace(/-/g, '').slice(0, 10).toUpperCase()}`;
      const path = `/files-pri/${TEAM_ID}-${id}/download/${encodeURIComponent(name)}`;
      files.set(path, bytes);
      return { id, name, title: name, mimetype, filetype: name.split('.').pop(), size: bytes.length, mode: 'hosted', url_private: `http://127.0.0.1:${port}${path.replace('/download/', '/')}`, url_private_download: `http://127.0.0.1:${port}${path}` };
    },
    downloads,
    socketsOpened: () => opened,
    socketsOpen: () => [...sockets].filter((s) => s.readyState === s.OPEN && !silenced.has(s)).length,
    sendEvent: (event, opts = {}) => sendEnvelope({
      envelope_id: opts.envelopeId ?? randomUUID(),
      type: 'events_api',
      accepts_response_payload: false,
      retry_attempt: opts.retryAttempt ?? 0,
      retry_reason: opts.retryAttempt ? 'timeout' : '',
      payload: eventCallback(event, opts.eventId),
    }, opts.timeoutMs ?? 5_000),
    sendSlashCommand: (payload, opts = {}) => sendEnvelope({
      envelope_id: opts.envelopeId ?? randomUUID(),
      type: 'slash_commands',
      accepts_response_payload: true,
      payload,
    }, opts.timeoutMs ?? 5_000),
    sendRaw: (text) => { for (const ws of sockets) ws.send(text); },
    dropConnections: () => { for (const ws of sockets) ws.terminate(); },
    silenceConnections: () => { for (const ws of sockets) silenced.add(ws); },
    waitFor,
    close: async () => {
      clearInterval(pinger);
      for (const ws of sockets) ws.terminate();
      await new Promise<void>((r) => wss.close(() => r()));
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** The event_callback body Slack wraps every Events API event in (HTTP body, or socket payload). */
export function eventCallback(event: Record<string, unknown>, eventId = `Ev${randomUUID().replace(/-/g, '').slice(0, 10).toUpperCase()}`): Record<string, unknown> {
  return {
    token: 'legacy-verification-token',
    team_id: TEAM_ID,
    api_app_id: 'A0STANDIN',
    event: { event_ts: event.ts, ...event },
    type: 'event_callback',
    event_id: eventId,
    event_time: Math.floor(Date.now() / 1000),
    authorizations: [{ enterprise_id: null, team_id: TEAM_ID, user_id: BOT_USER_ID, is_bot: true, is_enterprise_install: false }],
    is_ext_shared_channel: false,
  };
}

/** A slash command body as Slack sends it (form fields). */
export function slashCommand(fields: { user_id: string; channel_id: string; text: string; trigger_id?: string }): Record<string, string> {
  return {
    token: 'legacy-verification-token', team_id: TEAM_ID, team_domain: 'standin', channel_name: 'directmessage',
    user_name: fields.user_id.toLowerCase(), command: '/bulwark', api_app_id: 'A0STANDIN', is_enterprise_install: 'false',
    response_url: 'https://hooks.slack.invalid/commands/T/1/abc', trigger_id: fields.trigger_id ?? `${Date.now()}.${Math.floor(Math.random() * 1e9)}.abc`,
    user_id: fields.user_id, channel_id: fields.channel_id, text: fields.text,
  };
}

/** Slack's v0 request signature: HMAC-SHA256 over `v0:TIMESTAMP:BODY`. */
export function signSlackRequest(secret: string, timestamp: number, body: string): string {
  return `v0=${createHmac('sha256', secret).update(`v0:${timestamp}:${body}`).digest('hex')}`;
}

/** Posts a body to an HTTP-mode endpoint the way Slack does, signed (or deliberately mis-signed). */
export async function postSigned(url: string, body: string, opts: { secret?: string; timestamp?: number; signature?: string; retryNum?: number; contentType?: string } = {}): Promise<{ status: number; text: string }> {
  const timestamp = opts.timestamp ?? Math.floor(Date.now() / 1000);
  const headers: Record<string, string> = {
    'content-type': opts.contentType ?? 'application/json',
    'x-slack-request-timestamp': String(timestamp),
    'x-slack-signature': opts.signature ?? signSlackRequest(opts.secret ?? SIGNING_SECRET, timestamp, body),
  };
  if (opts.retryNum !== undefined) {
    headers['x-slack-retry-num'] = String(opts.retryNum);
    headers['x-slack-retry-reason'] = 'http_timeout';
  }
  const r = await fetch(url, { method: 'POST', headers, body });
  return { status: r.status, text: await r.text() };
}
