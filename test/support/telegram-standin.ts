import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/*
 * A stand-in for the Telegram Bot API over real HTTP: /bot<token>/<method> with JSON, form or
 * multipart bodies (sendDocument/sendPhoto uploads are recorded with their bytes and file name),
 * getUpdates with real long polling (held until an update arrives or `timeout` passes; `offset`
 * confirms and drops older updates), and the methods the adapter uses. Every call is recorded.
 * Faults can be injected per method: an HTTP error (429 with retry_after, 401, 409, …), a connection
 * dropped before the request is processed, or dropped after it was processed (outcome unknown).
 */

export interface Call { method: string; token: string; body: Record<string, any>; at: number; result?: any; /** Files uploaded with this call (multipart). */ uploads?: Upload[] }
export type Fault =
  | { status: number; description?: string; retryAfter?: number }
  | { drop: 'before' | 'after' };

export interface TgUser { id: number; is_bot: boolean; first_name: string; username?: string }
export interface TelegramStandIn {
  /** apiRoot for grammY: http://127.0.0.1:PORT (no trailing slash). */
  url: string;
  bot: TgUser & { username: string };
  calls: Call[];
  /** Calls of one method, in order. */
  sent(method?: string): Call[];
  /** Queues an update; returns its update_id. */
  push(update: Record<string, unknown>): number;
  /** Queues a text message update from `from` in `chat`. */
  message(o: { chat: { id: number; type: 'private' | 'group' | 'supergroup'; is_forum?: boolean }; from: TgUser; text?: string; extra?: Record<string, unknown>; entities?: unknown[]; threadId?: number; replyTo?: { message_id: number; from: TgUser }; messageId?: number }): { updateId: number; messageId: number };
  /** Queues a button press (callback_query) by `from` on one of the bot's messages; returns the query id. */
  pressButton(o: { from: TgUser; data: string; message: { message_id: number; chat: { id: number; type: 'private' | 'group' | 'supergroup' } } }): string;
  /** Inline keyboards the bot attached to sendMessage/editMessageText calls, flattened to [text, callback_data] per button. */
  buttons(call: Call): Array<[string, string]>;
  /** Delivers an already-delivered message again (same content, next update_id). */
  redeliver(updateId: number): void;
  fail(method: string, fault: Fault, times?: number): void;
  /** Makes a file downloadable through getFile; returns its file_id. */
  addFile(bytes: Buffer): string;
  /** Tokens other than these get 401. */
  tokens: Set<string>;
  /** Destroys the connections of held getUpdates requests. */
  dropPolls(): number;
  close(): Promise<void>;
}

/**
 * grammY writes each part header as `content-disposition:form-data;name="x";filename=y` (no spaces,
 * filename unquoted): Telegram takes that, the WHATWG parser only takes the canonical form. Only those
 * header lines are rewritten (the bytes as latin1, so binary content round-trips); the parsing itself
 * is Node's own `Request.formData()`.
 */
async function parseMultipart(raw: Buffer, contentType: string): Promise<FormData> {
  const canonical = raw.toString('latin1').replace(
    /(^|\r\n)content-disposition:\s*form-data;\s*name="([^"\r\n]*)"(?:;\s*filename=(?:"([^"\r\n]*)"|([^\r\n]*)))?\r\n/gi,
    (_m, lead: string, name: string, quoted?: string, bare?: string) => {
      const filename = quoted ?? bare;
      return `${lead}Content-Disposition: form-data; name="${name}"${filename !== undefined ? `; filename="${filename}"` : ''}\r\n`;
    },
  );
  return new Request('http://x', { method: 'POST', headers: { 'content-type': contentType }, body: Buffer.from(canonical, 'latin1') }).formData();
}

/** A file received with sendDocument/sendPhoto: the form field it was attached to, its name and bytes. */
export interface Upload { field: string; filename: string; bytes: Buffer }

async function readBody(req: IncomingMessage): Promise<{ body: Record<string, any>; uploads: Upload[] }> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const buf = Buffer.concat(chunks);
  const url = new URL(req.url ?? '/', 'http://x');
  const out: Record<string, any> = Object.fromEntries(url.searchParams);
  const uploads: Upload[] = [];
  if (buf.length === 0) return { body: out, uploads };
  const ct = req.headers['content-type'] ?? '';
  const value = (v: string) => { try { return JSON.parse(v); } catch { return v; } };
  if (ct.includes('json')) return { body: { ...out, ...JSON.parse(buf.toString('utf8')) }, uploads };
  if (ct.startsWith('multipart/form-data')) {
    // As the Bot API: a field holds "attach://<part>" and the bytes come in the part of that name.
    const form = await parseMultipart(buf, ct);
    const parts = new Map<string, File>();
    for (const [k, v] of form) if (typeof v === 'string') out[k] = value(v); else parts.set(k, v);
    for (const [k, v] of Object.entries(out)) {
      const attached = typeof v === 'string' && v.startsWith('attach://') ? parts.get(v.slice(9)) : undefined;
      if (attached) uploads.push({ field: k, filename: attached.name, bytes: Buffer.from(await attached.arrayBuffer()) });
    }
    return { body: out, uploads };
  }
  for (const [k, v] of new URLSearchParams(buf.toString('utf8'))) out[k] = value(v);
  return { body: out, uploads };
}

export async function startTelegramStandIn(opts: { token: string; bot?: Partial<TgUser> }): Promise<TelegramStandIn> {
  const bot = { id: 7_000_001, is_bot: true, first_name: 'Bulwark', username: 'bulwark_test_bot', ...opts.bot };
  const calls: Call[] = [];
  const updates: Array<Record<string, any>> = [];
  const delivered = new Map<number, Record<string, any>>();
  const faults = new Map<string, Fault[]>();
  const waiters = new Set<{ wake: () => void; res: ServerResponse }>();
  const sockets = new Set<Socket>();
  const tokens = new Set([opts.token]);
  const files = new Map<string, Buffer>();
  let nextFile = 0;
  let nextUpdate = 1000;
  let nextMessage = 500;

  const json = (res: ServerResponse, status: number, body: unknown) => {
    if (res.writableEnded || res.destroyed) return;
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  };
  const ok = (res: ServerResponse, result: unknown) => json(res, 200, { ok: true, result });
  const wakeAll = () => { for (const w of [...waiters]) w.wake(); };

  const server = createServer(async (req, res) => {
    const file = /^\/file\/bot([^/]+)\/(.+)$/.exec(req.url ?? '');
    if (file) {
      calls.push({ method: 'downloadFile', token: file[1]!, body: { path: file[2] }, at: Date.now() });
      const bytes = tokens.has(decodeURIComponent(file[1]!)) ? files.get(file[2]!) : undefined;
      if (!bytes) return json(res, 404, { ok: false, error_code: 404, description: 'Not Found' });
      res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(bytes);
      return;
    }
    const m = /^\/bot([^/]+)\/(\w+)/.exec(req.url ?? '');
    if (!m) return json(res, 404, { ok: false, error_code: 404, description: 'Not Found' });
    const [, token, method] = m as unknown as [string, string, string];
    let body: Record<string, any>;
    let uploads: Upload[];
    try { ({ body, uploads } = await readBody(req)); } catch { return json(res, 400, { ok: false, error_code: 400, description: 'Bad Request: invalid body' }); }
    const fault = faults.get(method)?.shift();
    if (fault && 'drop' in fault && fault.drop === 'before') { req.socket.destroy(); return; }
    calls.push({ method, token, body, at: Date.now(), ...(uploads.length > 0 ? { uploads } : {}) });
    if (!tokens.has(decodeURIComponent(token))) return json(res, 401, { ok: false, error_code: 401, description: 'Unauthorized' });
    if (fault && 'status' in fault) {
      return json(res, fault.status, { ok: false, error_code: fault.status, description: fault.description ?? `error ${fault.status}`, ...(fault.retryAfter !== undefined ? { parameters: { retry_after: fault.retryAfter } } : {}) });
    }
    const afterDrop = fault && 'drop' in fault && fault.drop === 'after';
    const reply = (result: unknown) => (afterDrop ? req.socket.destroy() : ok(res, result));
    switch (method) {
      case 'getMe': return reply(bot);
      case 'deleteWebhook': case 'setWebhook': case 'setMyCommands': case 'sendChatAction': case 'answerCallbackQuery': return reply(true);
      case 'sendMessage': case 'editMessageText': {
        const message_id = method === 'sendMessage' ? ++nextMessage : Number(body.message_id);
        calls.at(-1)!.result = { message_id };
        return reply({ message_id, date: Math.floor(Date.now() / 1000), chat: { id: Number(body.chat_id), type: 'private' }, from: bot, text: body.text, ...(body.message_thread_id ? { message_thread_id: body.message_thread_id } : {}) });
      }
      case 'sendDocument': case 'sendPhoto': {
        // Only a real upload is accepted here (the adapter never re-sends a file_id or a URL).
        const field = method === 'sendPhoto' ? 'photo' : 'document';
        const up = uploads.find((u) => u.field === field);
        if (!up) return json(res, 400, { ok: false, error_code: 400, description: `Bad Request: there is no ${field} in the request` });
        const message_id = ++nextMessage;
        calls.at(-1)!.result = { message_id };
        const media = method === 'sendPhoto'
          ? { photo: [{ file_id: `photo_${message_id}`, file_unique_id: `u${message_id}`, width: 1, height: 1, file_size: up.bytes.length }] }
          : { document: { file_id: `doc_${message_id}`, file_unique_id: `u${message_id}`, file_name: up.filename, file_size: up.bytes.length } };
        return reply({ message_id, date: Math.floor(Date.now() / 1000), chat: { id: Number(body.chat_id), type: 'private' }, from: bot, ...media, ...(body.message_thread_id ? { message_thread_id: body.message_thread_id } : {}) });
      }
      case 'getFile': {
        const path = `documents/${String(body.file_id)}`;
        return files.has(path) ? reply({ file_id: body.file_id, file_unique_id: body.file_id, file_size: files.get(path)!.length, file_path: path }) : json(res, 400, { ok: false, error_code: 400, description: 'Bad Request: invalid file_id' });
      }
      case 'getUpdates': {
        const offset = body.offset !== undefined ? Number(body.offset) : undefined;
        if (offset !== undefined) for (let i = updates.length - 1; i >= 0; i--) if (updates[i]!.update_id < offset) updates.splice(i, 1);
        const timeout = Math.min(50, Number(body.timeout ?? 0));
        const take = () => { const out = updates.slice(0, Number(body.limit ?? 100)); for (const u of out) delivered.set(u.update_id, u); return out; };
        if (updates.length > 0 || timeout === 0) return reply(take());
        await new Promise<void>((resolve) => {
          const w = { res, wake: () => { clearTimeout(timer); waiters.delete(w); resolve(); } };
          const timer = setTimeout(w.wake, timeout * 1000);
          waiters.add(w);
          // res 'close', not req.destroyed: the latter is already true once the body was read.
          res.on('close', w.wake);
        });
        return reply(take());
      }
      default: return json(res, 404, { ok: false, error_code: 404, description: `Not Found: method ${method}` });
    }
  });
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;

  const push = (update: Record<string, unknown>) => {
    const update_id = ++nextUpdate;
    updates.push({ update_id, ...update });
    wakeAll();
    return update_id;
  };

  return {
    url: `http://127.0.0.1:${port}`, bot, calls, tokens,
    sent: (method = 'sendMessage') => calls.filter((c) => c.method === method),
    push,
    message(o) {
      const messageId = o.messageId ?? ++nextMessage;
      const updateId = push({
        message: {
          message_id: messageId, date: Math.floor(Date.now() / 1000), chat: o.chat, from: o.from, ...(o.text !== undefined ? { text: o.text } : {}), ...o.extra,
          ...(o.entities ? { entities: o.entities } : {}),
          ...(o.threadId !== undefined ? { message_thread_id: o.threadId, is_topic_message: true } : {}),
          ...(o.replyTo ? { reply_to_message: { message_id: o.replyTo.message_id, from: o.replyTo.from, date: 0, chat: o.chat } } : {}),
        },
      });
      return { updateId, messageId };
    },
    pressButton(o) {
      const id = `cbq_${++nextUpdate}`;
      push({ callback_query: { id, from: o.from, chat_instance: `ci_${o.message.chat.id}`, data: o.data, message: { ...o.message, date: Math.floor(Date.now() / 1000), from: bot } } });
      return id;
    },
    buttons(call) {
      const rows: Array<Array<{ text: string; callback_data: string }>> = call.body.reply_markup?.inline_keyboard ?? [];
      return rows.flat().map((b) => [b.text, b.callback_data]);
    },
    redeliver(updateId) {
      const u = delivered.get(updateId);
      if (!u) throw new Error(`update ${updateId} was never delivered`);
      // A new update_id carrying the same message, as after a lost acknowledgement: only the
      // adapter's dedupe by message id can stop a second reply.
      updates.push({ ...u, update_id: ++nextUpdate });
      wakeAll();
    },
    addFile(bytes) {
      const id = `file_${++nextFile}`;
      files.set(`documents/${id}`, bytes);
      return id;
    },
    fail(method, fault, times = 1) {
      const list = faults.get(method) ?? [];
      for (let i = 0; i < times; i++) list.push(fault);
      faults.set(method, list);
    },
    dropPolls() {
      let n = 0;
      for (const w of [...waiters]) { w.res.socket?.destroy(); n++; }
      return n;
    },
    async close() {
      for (const w of [...waiters]) w.wake();
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
