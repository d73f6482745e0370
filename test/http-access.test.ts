import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { startLlmStandIn, type StandIn } from './support/llm-standin.js';
import { startRedis, type Service } from './support/services.js';
import { startTestHub, standInEnv, type TestHub } from './support/hub.js';
import { createServer } from '../src/gateway/server.js';
import { Metrics } from '../src/metrics.js';
import { silentLogger } from '../src/logger.js';

/*
 * The HTTP API from an attacker's side: no credentials, paths spelled every way a router or proxy
 * might read them, foreign Host headers (DNS rebinding), and an Authorization header that is only
 * present. Every request is sent raw (node:http), so nothing normalizes the path on the way.
 */

interface Raw { status: number; body: string; headers: Record<string, string | string[] | undefined> }

function raw(base: string, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<Raw> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, method, path, headers: { ...(body !== undefined ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) } : {}), ...headers } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { text += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, headers: res.headers }));
    });
    req.setTimeout(5_000, () => req.destroy(new Error(`${method} ${path}: no answer within 5 s`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** The ways one path can be spelled so that a string test and a router disagree. */
export function spellings(path: string): string[] {
  const segs = path.split('/').slice(1);
  const first = segs[0]!;
  const enc = (c: string) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
  const rest = `/${segs.slice(1).join('/')}`;
  return [
    path,
    `/${enc(first[0]!)}${first.slice(1)}${rest}`, // /%61pi/status
    `/${[...first].map(enc).join('')}${rest}`, // /%61%70%69/status
    `/${first}/${enc(segs[1]![0]!)}${segs[1]!.slice(1)}${segs.length > 2 ? `/${segs.slice(2).join('/')}` : ''}`, // /api/%73tatus
    `/${path}`, // //api/status
    path.replace(`/${first}/`, `/${first}//`), // /api//status
    `/${first}/.${rest}`, // /api/./status
    `/x/..${path}`, // /x/../api/status
    `/${first}/%2e${rest}`, // /api/%2e/status
    `/${first.toUpperCase()}${rest}`, // /API/status
    `/${first[0]!.toUpperCase()}${first.slice(1)}${rest}`, // /Api/status
    `${path}/`, // trailing slash
    `${path}?x=1`,
    `/${first}%2f${segs.slice(1).join('/')}`, // /api%2fstatus
  ];
}

/** A concrete path for a route pattern: every :param becomes an id-shaped value. */
const concrete = (url: string) => url.replace(/:[A-Za-z]+/g, 'c_abcdefgh12');

/** The routes anyone may call. Adding one here is a security decision: say why in the route. */
const PUBLIC = ['GET /', 'GET /app.js', 'GET /healthz', 'GET /login', 'GET /metrics', 'GET /readyz'];

describe('HTTP access control: every route is closed unless it says otherwise', () => {
  let redis: Service;
  let llm: StandIn;
  let t: TestHub;

  before(async () => {
    redis = await startRedis();
    llm = await startLlmStandIn();
    t = await startTestHub({ env: { REDIS_URL: redis.url, ...standInEnv(llm.baseUrl) } });
  });
  after(async () => { await t?.close(); await llm?.close(); await redis?.stop(); });

  it('the public routes are exactly the known ones; webhooks authenticate themselves', () => {
    const open = t.hub.routes.filter((r) => r.access === 'public').map((r) => `${r.method} ${r.url}`).sort();
    assert.deepEqual(open, PUBLIC);
    for (const r of t.hub.routes.filter((x) => x.access === 'signed')) assert.match(r.url, /^\/hooks\//, `${r.method} ${r.url} checks a signature`);
    assert.ok(t.hub.routes.filter((r) => r.access === 'owner' || r.access === 'token').length >= 15, 'the owner routes are enumerated');
  });

  it('every non-public route answers 401 without credentials, however its path is spelled', async () => {
    const closed = t.hub.routes.filter((r) => r.access === 'owner' || r.access === 'token');
    const open: string[] = [];
    for (const r of closed) {
      for (const path of spellings(concrete(r.url))) {
        const res = await raw(t.url, r.method, path, {}, r.method === 'GET' ? undefined : '{"text":"hi"}');
        if (res.status !== 401) open.push(`${r.method} ${path} → ${res.status}`);
      }
    }
    assert.deepEqual(open, []);
  });

  it('the reported bypass: /%61pi/* with no token, and a login link for any Authorization header', async () => {
    assert.equal((await raw(t.url, 'GET', '/%61pi/status')).status, 401);
    assert.equal((await raw(t.url, 'POST', '/%61pi/messages', {}, '{"text":"hi"}')).status, 401);
    for (const authorization of ['x', 'Basic b3duZXI6b3duZXI=', 'Bearer', 'Bearer not-the-token', `Bearer ${t.token}x`]) {
      const r = await raw(t.url, 'POST', '/%61pi/login-links', { authorization }, '{}');
      assert.equal(r.status, 401, authorization);
      assert.doesNotMatch(r.body, /login\?code=/);
    }
    // The real token still works on the real path.
    assert.equal((await raw(t.url, 'POST', '/api/login-links', { authorization: `Bearer ${t.token}` }, '{}')).status, 200);
  });

  it('refuses Host names it does not answer to (DNS rebinding), even with the token', async () => {
    const port = new URL(t.url).port;
    for (const host of [`attacker.example:${port}`, 'attacker.example', `localhost.attacker.example:${port}`, `127.0.0.1.nip.io:${port}`]) {
      const health = await raw(t.url, 'GET', '/healthz', { host });
      assert.equal(health.status, 421, `healthz for Host "${host}"`);
      const api = await raw(t.url, 'POST', '/api/messages', { host, authorization: `Bearer ${t.token}` }, '{"text":"rebound"}');
      assert.equal(api.status, 421, `POST /api/messages for Host "${host}"`);
    }
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`, `LOCALHOST:${port}`]) {
      assert.equal((await raw(t.url, 'GET', '/healthz', { host })).status, 200, host);
    }
  });

  it('answers 415 to a plain-text body, as the README says', async () => {
    const r = await raw(t.url, 'POST', '/api/messages', { authorization: `Bearer ${t.token}`, 'content-type': 'text/plain', 'content-length': '2' }, 'hi');
    assert.equal(r.status, 415);
    assert.match(JSON.parse(r.body).error, /application\/json/);
  });

  it('a cookie write needs our own Origin; an Authorization header that is only present does not skip it', async () => {
    const link = await t.api.request('POST', '/api/login-links', {});
    const login = await fetch(t.url + link.json.path, { redirect: 'manual' });
    const cookie = login.headers.get('set-cookie')!.split(';')[0]!;
    const post = (headers: Record<string, string>) => raw(t.url, 'POST', '/api/messages', { cookie, ...headers }, '{"text":"from a page"}');
    const host = new URL(t.url).host;
    assert.equal((await post({ origin: 'https://evil.example', authorization: 'Basic x' })).status, 401, 'a non-Bearer header is a failed credential, not a pass');
    assert.equal((await post({ origin: 'https://evil.example', authorization: 'Bearer wrong' })).status, 401);
    assert.equal((await post({ origin: 'https://evil.example' })).status, 403);
    assert.equal((await post({})).status, 403, 'no Origin and no Sec-Fetch-Site: not provably our page');
    assert.equal((await post({ 'sec-fetch-site': 'cross-site' })).status, 403);
    assert.equal((await post({ origin: `http://${host}` })).status, 202);
    assert.equal((await post({ 'sec-fetch-site': 'same-origin' })).status, 202);
    // A session cannot mint login links or run owner-token controls.
    assert.equal((await raw(t.url, 'POST', '/api/login-links', { cookie, origin: `http://${host}` }, '{}')).status, 401);
    assert.equal((await raw(t.url, 'POST', '/api/routines/sync', { cookie, origin: `http://${host}` }, '{}')).status, 401);
    // Reads with the session work.
    assert.equal((await raw(t.url, 'GET', '/api/status', { cookie })).status, 200);
  });
});

describe('HTTP access control: a route that declares nothing is closed', () => {
  let app: FastifyInstance;
  let base: string;
  before(async () => {
    app = await createServer({ logger: silentLogger(), metrics: new Metrics({ defaults: false }), checks: [], bodyLimit: 1024, access: { apiToken: 'tok-123', allowedHosts: ['bulwark.example.com', '.corp.example'] } });
    app.get('/forgot-to-declare', async () => ({ secret: 'data' }));
    app.get('/api/new-thing', async () => ({ ok: true }));
    base = await app.listen({ host: '127.0.0.1', port: 0 });
  });
  after(async () => { await app.close(); });

  it('answers 401 without the token and 200 with it', async () => {
    for (const path of ['/forgot-to-declare', '/api/new-thing', '/no-such-route']) {
      assert.equal((await raw(base, 'GET', path)).status, 401, path);
    }
    assert.equal((await raw(base, 'GET', '/forgot-to-declare', { authorization: 'Bearer tok-123' })).status, 200);
    assert.equal((await raw(base, 'GET', '/no-such-route', { authorization: 'Bearer tok-123' })).status, 404, 'owners learn a route is missing; strangers do not');
  });

  it('answers to server.allowed_hosts (and their subdomains for a leading dot), nothing else', async () => {
    for (const [host, status] of [['bulwark.example.com', 200], ['BULWARK.example.com:443', 200], ['a.corp.example', 200], ['corp.example', 200], ['evilcorp.example', 421], ['bulwark.example.com.evil', 421], ['10.1.2.3:8787', 200]] as const) {
      assert.equal((await raw(base, 'GET', '/healthz', { host })).status, status, host);
    }
  });
});
