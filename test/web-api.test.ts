import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest, type ClientRequest } from 'node:http';
import { startLlmStandIn, type StandIn } from './support/llm-standin.js';
import { startRedis, type Service } from './support/services.js';
import { startTestHub, standInEnv, type TestHub } from './support/hub.js';
import { waitFor } from './support/wait.js';
import { OUTBOUND, createQueue, outboundQueueName } from '../src/queues.js';

describe('web API: bad input, authentication and login', () => {
  let redis: Service;
  let llm: StandIn;
  let t: TestHub;

  before(async () => {
    redis = await startRedis();
    llm = await startLlmStandIn();
    t = await startTestHub({ env: { REDIS_URL: redis.url, ...standInEnv(llm.baseUrl), BULWARK_BODY_LIMIT: '4096' } });
  });
  after(async () => { await t?.close(); await llm?.close(); await redis?.stop(); });

  async function stillUp() {
    const sent = await t.api.send('still there?');
    assert.equal((await t.api.waitReply(sent.conversationId, sent.messageId)).text, 'echo: still there?');
  }

  it('rejects malformed JSON with 400 and a clear error', async () => {
    const r = await t.api.request('POST', '/api/messages', '{"text": "unterminated');
    assert.equal(r.status, 400);
    assert.match(r.json.error, /not valid JSON/);
  });

  it('rejects an oversized body with 413 naming the limit', async () => {
    const r = await t.api.request('POST', '/api/messages', { text: 'x'.repeat(10_000) });
    assert.equal(r.status, 413);
    assert.match(r.json.error, /larger than the limit of 4096 bytes/);
  });

  it('rejects a non-JSON content type with 415', async () => {
    const r = await t.api.request('POST', '/api/messages', 'text=hi', { 'content-type': 'application/x-www-form-urlencoded' });
    assert.equal(r.status, 415);
    assert.match(r.json.error, /application\/json/);
  });

  it('validates fields: empty text, unknown keys, bad ids', async () => {
    const empty = await t.api.request('POST', '/api/messages', { text: '   ' });
    assert.equal(empty.status, 400);
    assert.match(empty.json.error, /text: text must not be empty/);
    const extra = await t.api.request('POST', '/api/messages', { text: 'hi', admin: true });
    assert.equal(extra.status, 400);
    assert.match(extra.json.error, /admin/);
    const badId = await t.api.request('POST', '/api/messages', { text: 'hi', conversationId: '../../etc' });
    assert.equal(badId.status, 400);
    assert.match(badId.json.error, /conversationId/);
    const wrongType = await t.api.request('POST', '/api/messages', { text: 42 });
    assert.equal(wrongType.status, 400);
  });

  it('answers 404 for an unknown conversation', async () => {
    const r = await t.api.request('POST', '/api/messages', { text: 'hi', conversationId: 'c_doesnotexist123' });
    assert.equal(r.status, 404);
    assert.match(r.json.error, /unknown conversation c_doesnotexist123/);
    const list = await t.api.request('GET', '/api/conversations/c_doesnotexist123/messages');
    assert.equal(list.status, 404);
  });

  it('requires the token or a session on every API route', async () => {
    for (const [method, path] of [['POST', '/api/messages'], ['GET', '/api/status'], ['GET', '/api/conversations/c_abcdefgh12/messages'], ['POST', '/api/login-links']] as const) {
      const r = await fetch(t.url + path, { method, headers: { 'content-type': 'application/json' }, ...(method === 'POST' ? { body: '{"text":"hi"}' } : {}) });
      assert.equal(r.status, 401, `${method} ${path}`);
    }
    const wrong = await fetch(`${t.url}/api/status`, { headers: { authorization: 'Bearer not-the-token' } });
    assert.equal(wrong.status, 401);
  });

  it('exchanges a one-time login code for an HttpOnly cookie and drops the code from the URL', async () => {
    const link = await t.api.request('POST', '/api/login-links', {});
    assert.equal(link.status, 200);
    const login = await fetch(t.url + link.json.path, { redirect: 'manual' });
    assert.equal(login.status, 303);
    assert.equal(login.headers.get('location'), '/');
    const cookie = login.headers.get('set-cookie')!;
    assert.match(cookie, /bulwark_session=/);
    assert.match(cookie, /HttpOnly/);
    assert.match(cookie, /SameSite=Strict/);
    const session = cookie.split(';')[0]!;

    const reused = await fetch(t.url + link.json.path, { redirect: 'manual' });
    assert.equal(reused.status, 401, 'a login code works once');

    const page = await (await fetch(`${t.url}/`, { headers: { cookie: session } })).text();
    assert.match(page, /<script src="\/app.js">/);
    const sent = await fetch(`${t.url}/api/messages`, { method: 'POST', headers: { cookie: session, 'content-type': 'application/json', origin: t.url }, body: '{"text":"from the browser"}' });
    assert.equal(sent.status, 202);

    const forged = await fetch(`${t.url}/api/messages`, { method: 'POST', headers: { cookie: session, 'content-type': 'application/json', origin: 'https://evil.example' }, body: '{"text":"csrf"}' });
    assert.equal(forged.status, 403, 'a cross-site request with the cookie is refused');

    const loggedOut = await fetch(`${t.url}/api/logout`, { method: 'POST', headers: { cookie: session, origin: t.url } });
    assert.equal(loggedOut.status, 200);
    const after = await fetch(`${t.url}/api/status`, { headers: { cookie: session } });
    assert.equal(after.status, 401, 'the session is gone after logout');
  });

  it('throttles repeated bad login attempts', async () => {
    let last = 0;
    for (let i = 0; i < 12; i++) last = (await fetch(`${t.url}/login?code=guess${i}aaaaaaaaaaaaaaaaaa`, { redirect: 'manual' })).status;
    assert.equal(last, 429);
    // The owner's real link still works from the same address: a stranger's guesses cannot lock them out.
    const link = await t.api.request('POST', '/api/login-links', {});
    assert.equal((await fetch(t.url + link.json.path, { redirect: 'manual' })).status, 303);
  });

  it('serves the page with a strict Content-Security-Policy', async () => {
    const r = await fetch(`${t.url}/`);
    assert.match(r.headers.get('content-security-policy')!, /script-src 'self'/);
    assert.match(await r.text(), /one-time login link/);
  });

  it('bounds every cursor to what the database stores: 400, never a hang or a 500', async () => {
    const { conversationId } = await t.api.send('a conversation to read');
    const events = `/api/conversations/${conversationId}/events`;
    for (const [path, headers] of [
      [`${events}?after=1e20`, {}], [`${events}?after=2147483648`, {}], [`${events}?after=-1`, {}], [`${events}?after=abc`, {}],
      [events, { 'last-event-id': '99999999999999999999' }], [events, { 'last-event-id': '1.5' }],
      [`/api/conversations/${conversationId}/messages?after=2147483648`, {}], [`/api/conversations/${conversationId}/messages?after=1e20`, {}],
    ] as const) {
      const r = await t.api.request('GET', path, undefined, { ...headers }, AbortSignal.timeout(5_000));
      assert.equal(r.status, 400, `${path} ${JSON.stringify(headers)}`);
      assert.match(r.json.error, /after|Last-Event-ID/);
    }
    const ok = await t.api.request('GET', `/api/conversations/${conversationId}/messages?after=2147483647`);
    assert.deepEqual(ok.json.messages, [], 'the largest seq the database takes is a valid cursor');
  });

  it('abandoned event streams leave no listener and no socket behind', async () => {
    const { conversationId } = await t.api.send('a conversation to watch');
    const gauge = async (name: string) => Number(new RegExp(`^${name} (\\d+)`, 'm').exec(await (await fetch(`${t.url}/metrics`)).text())?.[1] ?? NaN);
    const baseline = await gauge('bulwark_http_connections');
    const u = new URL(t.url);
    const open = (query: string) => new Promise<{ status: number; req: ClientRequest }>((resolve, reject) => {
      // No agent: each stream is its own socket, as a browser tab's would be.
      const req = httpRequest({ host: u.hostname, port: u.port, path: `/api/conversations/${conversationId}/events${query}`, agent: false, headers: { authorization: `Bearer ${t.token}` } }, (res) => resolve({ status: res.statusCode ?? 0, req }));
      req.on('error', (err) => { if (!req.destroyed) reject(err); });
      req.setTimeout(5_000, () => reject(new Error(`no answer for ${query}`)));
      req.end();
    });
    const opened = await Promise.all(Array.from({ length: 60 }, (_, i) => open(i % 3 === 0 ? '' : `?after=${i % 2 === 0 ? 0 : '1e20'}`)));
    assert.equal(opened.filter((o) => o.status === 200).length, 40, 'the valid streams opened');
    assert.equal(opened.filter((o) => o.status === 400).length, 20, 'the bad cursors were answered at once');
    assert.equal(await gauge('bulwark_web_event_streams'), 40);
    for (const o of opened) o.req.destroy();
    await waitFor(async () => (await gauge('bulwark_web_event_streams')) === 0 || undefined, 'every stream to be closed');
    await waitFor(async () => (await gauge('bulwark_http_connections')) <= baseline || undefined, 'the sockets to be released');
  });

  it('a retried first message returns its original conversation; the same id elsewhere is a new message', async () => {
    const before = llm.requests.length;
    const first = await t.api.send('the first words', { clientMessageId: 'first-try-1' });
    const retry = await t.api.send('the first words', { clientMessageId: 'first-try-1' });
    assert.equal(first.duplicate, false);
    assert.equal(retry.duplicate, true);
    assert.equal(retry.conversationId, first.conversationId, 'the client learns where the reply is');
    assert.equal(retry.messageId, first.messageId);
    assert.equal((await t.api.waitReply(retry.conversationId, retry.messageId)).text, 'echo: the first words');
    const again = await t.api.send('the first words', { clientMessageId: 'first-try-1' });
    assert.deepEqual([again.conversationId, again.duplicate], [first.conversationId, true], 'still the same after the turn');
    // The same client id in another conversation is that conversation's own message.
    const other = await t.api.send('elsewhere');
    const reused = await t.api.send('same id, other place', { clientMessageId: 'first-try-1', conversationId: other.conversationId });
    assert.equal(reused.duplicate, false);
    assert.equal((await t.api.waitReply(other.conversationId, reused.messageId)).text, 'echo: same id, other place');
    assert.equal(llm.requests.length - before, 3, 'one model call per distinct message');
    const status = await t.api.request('GET', '/api/status');
    const conversations = status.json.stored.conversations;
    await t.api.send('the first words', { clientMessageId: 'first-try-1' });
    assert.equal((await t.api.request('GET', '/api/status')).json.stored.conversations, conversations, 'a retry creates no conversation');
  });

  it('is still up and answering after all of that', stillUp);

  it('replies left on the single "outbound" queue of earlier versions move to their channel\'s queue (same job id)', async () => {
    const target = { url: redis.url };
    const legacy = createQueue(OUTBOUND, target);
    const web = createQueue(outboundQueueName('web'), target);
    try {
      await legacy.add('send', { channel: 'web', note: 'queued by an older hub' }, { jobId: 'reply/legacy-1' });
      // Not a valid (sealed) reply: once moved, the web outbox refuses it for good, which shows where it went.
      const moved = await waitFor(async () => (await web.getFailed()).find((j) => j.id === 'reply/legacy-1'), 'the job in outbound-web');
      assert.match(moved.failedReason, /invalid outbound job payload/);
      assert.equal((await legacy.getWaiting()).length, 0);
    } finally {
      await legacy.close();
      await web.close();
    }
  });
});
