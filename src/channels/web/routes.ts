import { randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import type { ConversationStore, StoredMessage } from '../../conversations/store.js';
import { route } from '../../gateway/access.js';
import { LoginThrottle, SESSION_COOKIE, type Sessions } from '../../gateway/auth.js';
import type { DurableAuditSink } from '../../audit/log.js';
import type { Logger } from '../../logger.js';
import type { Metrics } from '../../metrics.js';
import { FileGone } from '../attachments.js';
import { MAX_REPLY_FILES, type FileRef } from '../contract.js';
import type { Inbox } from '../inbox.js';
import type { WebEvent, WebFanout } from './index.js';
import { APP_JS, PAGE_HTML } from './page.js';

export interface WebRouteDeps {
  inbox: Inbox;
  store: ConversationStore;
  fanout: WebFanout;
  sessions: Sessions;
  metrics: Metrics;
  logger: Logger;
  /** Secure cookies when the hub is served over https (behind a TLS proxy). */
  secureCookies: boolean;
  /** Logins (and refused ones) go to the audit log, committed before the answer. */
  audit?: DurableAuditSink;
  /** Opens a file the agent sent (attachments.ts openAgentFile with the hub's home and cipher). */
  openFile(conversationId: string, ref: FileRef): Promise<Buffer>;
}

const ACCOUNT = 'local';
const convId = z.string().regex(/^c_[A-Za-z0-9_-]{8,64}$/, 'conversationId is not a Bulwark conversation id');

export const postMessageSchema = z.strictObject({
  conversationId: convId.optional(),
  text: z.string().trim().min(1, 'text must not be empty').max(32_000, 'text is longer than 32000 characters'),
  /** Lets a client retry a POST safely: the same id is accepted once. */
  clientMessageId: z.string().regex(/^[A-Za-z0-9_-]{1,128}$/, 'clientMessageId may only contain letters, digits, _ and -').optional(),
  channel: z.enum(['web', 'cli']).default('web'),
});

/** Message seqs are 32-bit in PostgreSQL: a larger cursor is a client error, not a query to send. */
export const MAX_SEQ = 2_147_483_647;
const cursor = z.coerce.number({ error: `must be a whole number from 0 to ${MAX_SEQ}` }).int(`must be a whole number from 0 to ${MAX_SEQ}`).min(0, 'must not be negative').max(MAX_SEQ, `must be at most ${MAX_SEQ}`);
const listQuery = z.strictObject({
  after: cursor.default(0),
  limit: z.coerce.number().int().min(1).max(500).default(100),
});
/** Where an event stream resumes: Last-Event-ID (a reconnecting EventSource) wins over ?after=. */
const eventsQuery = z.strictObject({ after: cursor.optional() });
const lastEventId = eventsQuery.shape.after;

/** Where the web chat and `bulwark chat` download a file the agent sent. */
export function fileUrl(conversationId: string, messageId: string, index: number): string {
  return `/api/conversations/${conversationId}/files?message=${encodeURIComponent(messageId)}&index=${index}`;
}

export function fileViews(conversationId: string, messageId: string, files: readonly FileRef[]) {
  return files.map((f, i) => ({ name: f.name, mime: f.mime, bytes: f.bytes, url: fileUrl(conversationId, messageId, i) }));
}

function view(m: StoredMessage) {
  return { id: m.id, seq: m.seq, role: m.role, text: m.text, replyTo: m.replyTo, files: fileViews(m.conversationId, m.id, m.files), createdAt: m.createdAt.toISOString() };
}

const fileQuery = z.strictObject({
  message: z.string().min(1).max(256),
  index: z.coerce.number().int().min(0).max(MAX_REPLY_FILES - 1),
});

export function badRequest(reply: FastifyReply, issues: z.core.$ZodIssue[]) {
  const [first] = issues;
  const where = first?.path.length ? `${first.path.join('.')}: ` : '';
  return reply.code(400).send({ error: `${where}${first?.message ?? 'invalid request'}` });
}

/** The web chat page, its login exchange, and the JSON API used by the page and `bulwark chat`. */
export function registerWebRoutes(app: FastifyInstance, deps: WebRouteDeps): void {
  const throttle = new LoginThrottle();

  // Routes without a `route(...)` option are owner-only: src/gateway/access.ts checks them.
  app.get('/', route('public'), async (req, reply) => {
    reply.header('content-security-policy', "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
    reply.header('x-content-type-options', 'nosniff').header('referrer-policy', 'no-referrer').type('text/html; charset=utf-8');
    return PAGE_HTML((await deps.sessions.valid(req.cookies[SESSION_COOKIE])));
  });
  app.get('/app.js', route('public'), async (_req, reply) => reply.type('text/javascript; charset=utf-8').header('x-content-type-options', 'nosniff').send(APP_JS));

  app.get('/login', route('public'), async (req, reply) => {
    const ip = req.ip;
    const code = (req.query as Record<string, unknown>).code;
    // The code is checked before the throttle: a valid one always works, so a stranger's bad codes
    // (from this address or any other) cannot lock the owner out; only the failing source is slowed.
    const sid = typeof code === 'string' ? await deps.sessions.redeem(code) : undefined;
    if (!sid) {
      if (throttle.blocked(ip)) return reply.code(429).send({ error: 'too many failed logins from this address; wait a minute' });
      throttle.fail(ip);
      deps.logger.warn({ ip }, 'web login refused');
      await deps.audit?.({ kind: 'web.login_refused', actor: `ip:${ip}`, data: { ip } });
      return reply.code(401).type('text/plain').send('This login link is invalid or was already used. Run `bulwark login` for a new one.\n');
    }
    deps.logger.info({ ip }, 'web login');
    await deps.audit?.({ kind: 'web.login', actor: 'owner', data: { ip, via: 'login link' } });
    reply.setCookie(SESSION_COOKIE, sid, { httpOnly: true, sameSite: 'strict', path: '/', secure: deps.secureCookies, maxAge: 7 * 24 * 3600 });
    // The code leaves the address bar (and history) at once.
    return reply.header('referrer-policy', 'no-referrer').redirect('/', 303);
  });

  app.post('/api/logout', async (req, reply) => {
    const sid = req.cookies[SESSION_COOKIE];
    if (sid) await deps.sessions.end(sid);
    return reply.clearCookie(SESSION_COOKIE, { path: '/' }).send({ ok: true });
  });

  // Only the API token makes login links (`bulwark login`): a session cannot mint more sessions.
  app.post('/api/login-links', route('token'), async () => {
    const code = await deps.sessions.createLoginCode();
    await deps.audit?.({ kind: 'web.login_link', actor: 'owner', data: { via: 'api token', expiresInSeconds: 600 } });
    return { path: `/login?code=${code}`, expiresInSeconds: 600 };
  });

  app.post('/api/messages', async (req, reply) => {
    const parsed = postMessageSchema.safeParse(req.body);
    if (!parsed.success) return badRequest(reply, parsed.error.issues);
    const body = parsed.data;
    let conversationId = body.conversationId;
    if (conversationId) {
      if (!(await deps.store.conversationExists(conversationId, body.channel))) {
        return reply.code(404).send({ error: `unknown conversation ${conversationId}: omit conversationId to start a new one` });
      }
    } else {
      // A retried first message (same clientMessageId, still no conversation) lands in the
      // conversation its first try started, so the client learns where the reply is.
      const fresh = `c_${randomBytes(12).toString('base64url')}`;
      conversationId = body.clientMessageId ? await deps.inbox.firstConversation(body.channel, body.clientMessageId, fresh) : fresh;
    }
    // A client's id is unique within its conversation (like a platform's message id within its chat),
    // so the same id in another conversation is another message, not a duplicate.
    const messageId = body.clientMessageId ? `${conversationId}/${body.clientMessageId}` : `m_${randomBytes(12).toString('base64url')}`;
    const accepted = await deps.inbox.accept({
      channel: body.channel, accountId: ACCOUNT, chatId: conversationId, conversationId, messageId,
      chatType: 'dm', sender: { id: 'owner', name: 'owner', isBot: false }, text: body.text, receivedAt: Date.now(),
    });
    (accepted.duplicate ? deps.metrics.duplicatesIn : deps.metrics.messagesIn).inc({ channel: body.channel });
    return reply.code(202).send({ conversationId, messageId, duplicate: accepted.duplicate });
  });

  app.get('/api/conversations/:id/messages', async (req, reply) => {
    const id = convId.safeParse((req.params as { id: string }).id);
    if (!id.success) return badRequest(reply, id.error.issues);
    const q = listQuery.safeParse(req.query);
    if (!q.success) return badRequest(reply, q.error.issues);
    if (!(await deps.store.conversationExists(id.data))) return reply.code(404).send({ error: `unknown conversation ${id.data}` });
    const rows = await deps.store.listAfter(id.data, q.data.after, q.data.limit);
    return { conversationId: id.data, messages: rows.map(view) };
  });

  // A file the agent sent with a reply in this conversation. Served as a download that the browser
  // will not render or sniff (the bytes came from the model).
  app.get('/api/conversations/:id/files', async (req, reply) => {
    const id = convId.safeParse((req.params as { id: string }).id);
    if (!id.success) return badRequest(reply, id.error.issues);
    const q = fileQuery.safeParse(req.query);
    if (!q.success) return badRequest(reply, q.error.issues);
    const m = await deps.store.getMessage(q.data.message);
    const ref = m && m.conversationId === id.data ? m.files[q.data.index] : undefined;
    if (!ref) return reply.code(404).send({ error: 'no such file in this conversation' });
    let bytes: Buffer;
    try {
      bytes = await deps.openFile(id.data, ref);
    } catch (err) {
      if (!(err instanceof FileGone)) throw err;
      deps.logger.warn({ conversationId: id.data, file: ref.id, err: err.message }, 'a file the agent sent could not be opened');
      return reply.code(410).send({ error: 'the file is no longer available' });
    }
    return reply
      .header('content-type', ref.mime === 'text/plain' ? 'text/plain; charset=utf-8' : ref.mime)
      .header('content-disposition', `attachment; filename="${ref.name.replace(/[^\x20-\x7e]|["\\]/g, '_')}"; filename*=UTF-8''${encodeURIComponent(ref.name)}`)
      .header('x-content-type-options', 'nosniff')
      .header('content-security-policy', "sandbox; default-src 'none'")
      .header('cache-control', 'no-store')
      .send(bytes);
  });

  // Server-sent events: one `message` event per reply, `id:` = seq so EventSource resumes with
  // Last-Event-ID after a reconnect (missed replies are read back from the database first).
  // Every input is checked before the response is taken over; once it is, the cleanup is in place
  // before the first await, and a failure ends the stream instead of leaving it open for ever.
  app.get('/api/conversations/:id/events', async (req, reply) => {
    const id = convId.safeParse((req.params as { id: string }).id);
    if (!id.success) return badRequest(reply, id.error.issues);
    const q = eventsQuery.safeParse(req.query);
    if (!q.success) return badRequest(reply, q.error.issues);
    const resume = lastEventId.safeParse(req.headers['last-event-id'] === '' ? undefined : req.headers['last-event-id']);
    if (!resume.success) return badRequest(reply, resume.error.issues.map((i) => ({ ...i, path: ['Last-Event-ID'] })));
    if (!(await deps.store.conversationExists(id.data))) return reply.code(404).send({ error: `unknown conversation ${id.data}` });
    const after = resume.data ?? q.data.after;

    reply.hijack();
    const res = reply.raw;
    let last = after ?? -1;
    let held: WebEvent[] | undefined = [];
    let ping: NodeJS.Timeout | undefined;
    let closed = false;
    const write = (e: WebEvent) => {
      if (closed || e.seq <= last) return;
      last = e.seq;
      res.write(`id: ${e.seq}\nevent: message\ndata: ${JSON.stringify(e)}\n\n`);
    };
    // Listen first and hold live events while the backlog is replayed, so none fall in between.
    const stop = deps.fanout.listen(id.data, (e) => (held ? held.push(e) : write(e)));
    deps.metrics.eventStreams.inc();
    const cleanup = () => {
      if (closed) return;
      closed = true;
      clearInterval(ping);
      stop();
      deps.metrics.eventStreams.dec();
    };
    req.raw.once('close', cleanup);
    res.once('close', cleanup);
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    try {
      if (after !== undefined) {
        for (const m of await deps.store.listAfter(id.data, after, 500)) {
          if (m.role === 'assistant') write({ id: m.id, seq: m.seq, conversationId: m.conversationId, role: 'assistant', text: m.text, replyTo: m.replyTo ?? undefined, files: fileViews(m.conversationId, m.id, m.files) });
        }
      }
      for (const e of held.sort((a, b) => a.seq - b.seq)) write(e);
      held = undefined;
      if (closed) return;
      res.write(': connected\n\n');
      ping = setInterval(() => res.write(': ping\n\n'), 15_000);
    } catch (err) {
      deps.metrics.errors.inc({ where: 'http' });
      deps.logger.error({ conversationId: id.data, err: (err as Error).message }, 'event stream failed while replaying missed replies');
      cleanup();
      res.end();
    }
  });
}
