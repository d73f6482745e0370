// The vault's egress against real HTTP servers on 127.0.0.1: handles become values only where each
// secret's policy allows, smuggled values and raw credentials are refused, echoes are scrubbed.
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, it } from 'node:test';
import { createPolicyEgress, EgressDeniedError, type EgressRequest, type EgressResponse } from '../sandbox/egress.js';
import { normalizeGrant, SECRET_NAME as GRANT_SECRET_NAME } from '../sandbox/grant.js';
import { grantFromManifest, ManifestError } from '../sandbox/manifest.js';
import { fetchFollowingRedirects } from '../sandbox/redirects.js';
import { createVaultEgress, type EgressEvent } from './egress.js';
import { SECRET_NAME, secretPolicySchema } from './policy.js';
import { memorySecretSource } from './source.js';

const VALUE = 'tok_9fK2mQx7LpZ3vR8wNc4J';
const OTHER_VALUE = 'otherValue_5Hs8Kd2Lq0Wz';
const forms = (v: string): string[] => [v, Buffer.from(v).toString('base64').slice(0, 24), Buffer.from(v).toString('hex'), encodeURIComponent(v)];

interface Seen { method: string; url: string; headers: IncomingHttpHeaders; body: string }

async function listen(handler: (req: Seen, res: import('node:http').ServerResponse) => void): Promise<{ server: Server; port: number; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      const s = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body };
      seen.push(s);
      handler(s, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port, seen };
}

describe('vault egress: secret handles injected at the host boundary', () => {
  let a: Awaited<ReturnType<typeof listen>>;
  let b: Awaited<ReturnType<typeof listen>>;
  let A = '';
  let B = '';
  const events: EgressEvent[] = [];
  let egress: ReturnType<typeof createVaultEgress>;

  before(async () => {
    a = await listen((req, res) => {
      const path = new URL(req.url, 'http://x').pathname;
      if (path === '/redirect-away') {
        res.writeHead(302, { location: `${B}/landing` });
        return res.end();
      }
      if (path === '/redirect-away-with-handle') {
        res.writeHead(307, { location: `${B}/landing?api_key={{secret:API_TOKEN}}` });
        return res.end();
      }
      if (path === '/redirect-home') {
        res.writeHead(307, { location: '/record' });
        return res.end();
      }
      if (path === '/echo') {
        // A careless (or hostile) server that reflects the credential everywhere it can.
        const got = `${req.headers.authorization ?? ''}|${req.url}|${req.body}`;
        res.statusMessage = `Echo ${req.headers.authorization ?? ''}`.replace(/[^\x20-\x7e]/g, '');
        res.writeHead(200, { 'x-echo': got, 'x-echo-b64': Buffer.from(got).toString('base64'), [`x-${VALUE.toLowerCase()}`]: '1' });
        return res.end(JSON.stringify({ got, b64: Buffer.from(got).toString('base64'), hex: Buffer.from(got).toString('hex') }));
      }
      if (path === '/leaky') {
        return res.end(`your other key is ${OTHER_VALUE}`);
      }
      if (path === '/doc') {
        return res.end('send "Authorization: Bearer abcdefgh12345678" with every call');
      }
      if (path === '/echo-tail') {
        return res.end(`${'x'.repeat(100)}${req.headers['x-api-key'] ?? ''}${'y'.repeat(100)}`);
      }
      res.end('ok');
    });
    b = await listen((_req, res) => res.end('b'));
    A = `http://127.0.0.1:${a.port}`;
    B = `http://127.0.0.1:${b.port}`;
    const source = memorySecretSource({
      API_TOKEN: {
        value: VALUE,
        policy: secretPolicySchema.parse({ hosts: [A], headers: ['Authorization: Bearer {value}', 'X-Api-Key: {value}'], query: ['api_key'], body: true, methods: ['GET', 'POST'] }),
      },
      OTHER_TOKEN: { value: OTHER_VALUE, policy: secretPolicySchema.parse({ hosts: ['api.example.com'], headers: ['Authorization: token {value}'] }) },
      HEADER_ONLY: { value: 'hdrOnly_7Tq2Xz9Pm4', policy: secretPolicySchema.parse({ hosts: [A], headers: ['X-Api-Key: {value}'], methods: ['GET'] }) },
    });
    egress = createVaultEgress(createPolicyEgress(), source, { onEvent: (e) => events.push(e) });
  });
  after(async () => {
    await new Promise((r) => a.server.close(r));
    await new Promise((r) => b.server.close(r));
  });
  beforeEach(() => {
    a.seen.length = 0;
    b.seen.length = 0;
  });

  /** A request as the sandbox makes it (redirects followed by hand, each hop through the egress). */
  const send = (init: Partial<EgressRequest> & { url: string }): Promise<EgressResponse> => fetchFollowingRedirects(egress, {
    method: 'GET', headers: {}, allow: [A, B], secrets: ['API_TOKEN', 'OTHER_TOKEN', 'HEADER_ONLY'], maxResponseBytes: 1 << 20, timeoutMs: 5000, ...init,
  }, AbortSignal.timeout(5000), Date.now() + 5000);

  /** The request must be refused, nothing may reach either server, and the message must not hold a value. */
  async function refused(init: Partial<EgressRequest> & { url: string }, message: RegExp): Promise<void> {
    await assert.rejects(send(init), (err: Error) => {
      assert.ok(err instanceof EgressDeniedError, `expected a refusal, got ${err.name}`);
      assert.match(err.message, message);
      for (const v of [VALUE, OTHER_VALUE]) assert.ok(!err.message.includes(v), 'the refusal message holds a secret value');
      return true;
    });
    assert.equal(a.seen.length + b.seen.length, 0, 'a refused request reached a server');
  }

  it('injects the value into a listed header, rendering the policy\'s template', async () => {
    await send({ url: `${A}/record`, headers: { authorization: '{{secret:API_TOKEN}}' } });
    await send({ url: `${A}/record`, headers: { authorization: 'Bearer {{secret:API_TOKEN}}', 'x-api-key': '{{secret:HEADER_ONLY}}' } });
    assert.equal(a.seen[0]!.headers.authorization, `Bearer ${VALUE}`);
    assert.equal(a.seen[1]!.headers.authorization, `Bearer ${VALUE}`);
    assert.equal(a.seen[1]!.headers['x-api-key'], 'hdrOnly_7Tq2Xz9Pm4');
  });

  it('injects into a listed query parameter and the body, leaving the rest of the request as written', async () => {
    const res = await send({ url: `${A}/record?q=a%20b&api_key={{secret:API_TOKEN}}&x=%7E`, method: 'POST', body: '{"token":"{{secret:API_TOKEN}}","n":1}' });
    assert.equal(a.seen[0]!.url, `/record?q=a%20b&api_key=${encodeURIComponent(VALUE)}&x=%7E`);
    assert.equal(a.seen[0]!.body, `{"token":"${VALUE}","n":1}`);
    // The URL the guest gets back is the one it wrote, with the handle.
    assert.equal(res.url, `${A}/record?q=a%20b&api_key={{secret:API_TOKEN}}&x=%7E`);
  });

  it('refuses a granted host that the secret\'s policy does not name; that server receives nothing', async () => {
    await refused({ url: `${B}/record`, headers: { authorization: '{{secret:API_TOKEN}}' } }, new RegExp(`API_TOKEN may not be sent to http://127\\.0\\.0\\.1:${b.port}; its policy allows hosts http://127\\.0\\.0\\.1:${a.port}`));
    await refused({ url: `${A}/record`, headers: { authorization: 'token {{secret:OTHER_TOKEN}}' } }, /OTHER_TOKEN may not be sent to .*api\.example\.com/);
  });

  it('refuses a method, header, query parameter or body the policy does not allow', async () => {
    await refused({ url: `${A}/record`, method: 'DELETE', headers: { authorization: '{{secret:API_TOKEN}}' } }, /API_TOKEN may not be sent with DELETE; .*methods GET, POST/);
    await refused({ url: `${A}/record`, headers: { 'x-custom': '{{secret:API_TOKEN}}' } }, /may not be placed in the header "x-custom".*header "Authorization: Bearer \{value\}"/);
    await refused({ url: `${A}/record`, headers: { authorization: 'Basic {{secret:API_TOKEN}}' } }, /write it as "Bearer \{\{secret:API_TOKEN\}\}" or just "\{\{secret:API_TOKEN\}\}"/);
    await refused({ url: `${A}/record?token={{secret:API_TOKEN}}` }, /may not be placed in the query parameter "token"/);
    await refused({ url: `${A}/record?api_key=x{{secret:API_TOKEN}}` }, /must be exactly one secret handle/);
    await refused({ url: `${A}/record`, method: 'POST', body: '{{secret:HEADER_ONLY}}' }, /HEADER_ONLY may not be sent with POST/);
    await refused({ url: `${A}/record`, body: 'k={{secret:HEADER_ONLY}}', method: 'GET' }, /HEADER_ONLY may not be placed in the request body/);
  });

  it('refuses handles in the URL\'s path or host instead of sending them literally', async () => {
    await refused({ url: `${A}/users/{{secret:API_TOKEN}}/repos` }, /may not appear in the URL's host, path or fragment/);
    await refused({ url: `${A}/users/%7B%7Bsecret:API_TOKEN%7D%7D` }, /may not appear in the URL's host, path or fragment/);
    await refused({ url: `${A}/record`, headers: { authorization: 'Bearer {{secret:bad name}}' } }, /malformed secret handle/);
  });

  it('refuses a handle the run was not given, and one that is not in the vault, without saying which exists', async () => {
    await refused({ url: `${A}/record`, headers: { authorization: '{{secret:API_TOKEN}}' }, secrets: [] }, /API_TOKEN is not granted to this run \(handles granted: none\)/);
    await refused({ url: `${A}/record`, headers: { authorization: '{{secret:NOPE}}' }, secrets: ['API_TOKEN'] }, /NOPE is not granted to this run \(handles granted: \{\{secret:API_TOKEN\}\}\)/);
    await refused({ url: `${A}/record`, headers: { authorization: '{{secret:MISSING}}' }, secrets: ['MISSING'] }, /there is no secret named MISSING in the vault/);
  });

  it('never lets a redirect carry the value to another host, whether or not the handle is re-sent', async () => {
    const res = await send({ url: `${A}/redirect-away`, headers: { authorization: '{{secret:API_TOKEN}}' } });
    assert.equal(res.status, 200);
    assert.equal(a.seen[0]!.headers.authorization, `Bearer ${VALUE}`);
    assert.equal(b.seen.length, 1);
    assert.ok(!JSON.stringify(b.seen).includes(VALUE), 'the second hop carried the secret');
    a.seen.length = 0;
    b.seen.length = 0;
    // A follower that keeps headers across origins, or a guest that re-sends the handle: refused.
    await refused({ url: `${B}/landing`, headers: { authorization: '{{secret:API_TOKEN}}' } }, /may not be sent to/);
    // The first server plants the handle in its redirect target: the hop to the other host is refused.
    await assert.rejects(send({ url: `${A}/redirect-away-with-handle` }), /API_TOKEN may not be sent to/);
    assert.equal(b.seen.length, 0);
    // Same-origin hops keep the header, and the value goes again to the host that is allowed it.
    a.seen.length = 0;
    await send({ url: `${A}/redirect-home`, headers: { authorization: '{{secret:API_TOKEN}}' } });
    assert.deepEqual(a.seen.map((s) => s.headers.authorization), [`Bearer ${VALUE}`, `Bearer ${VALUE}`]);
  });

  it('scrubs an echoed value from the response body and headers, raw, base64 and hex', async () => {
    const res = await send({ url: `${A}/echo?api_key={{secret:API_TOKEN}}`, method: 'POST', headers: { authorization: '{{secret:API_TOKEN}}' }, body: 'token={{secret:API_TOKEN}}' });
    assert.ok(a.seen[0]!.body.includes(VALUE), 'the server did not get the value');
    const seenByGuest = JSON.stringify(res);
    for (const form of forms(VALUE)) assert.ok(!seenByGuest.includes(form), 'the guest saw an echoed value');
    assert.match(res.body, /\[REDACTED:API_TOKEN\]/);
    assert.match(res.headers['x-echo']!, /\[REDACTED:API_TOKEN\]/);
    assert.ok(!Object.keys(res.headers).some((h) => h.includes(VALUE.toLowerCase())), 'a header name carried the value');
    assert.ok(events.some((e) => e.kind === 'response_scrubbed' && e.secrets.includes('API_TOKEN')));
  });

  it('keeps any vault value a server hands out from the guest, and leaves ordinary pages alone', async () => {
    const leaky = await send({ url: `${A}/leaky` });
    assert.equal(leaky.body, 'your other key is [REDACTED:OTHER_TOKEN]');
    const doc = await send({ url: `${A}/doc` });
    assert.equal(doc.body, 'send "Authorization: Bearer abcdefgh12345678" with every call');
  });

  it('scrubs a value cut in half by the response size cap', async () => {
    const res = await send({ url: `${A}/echo-tail`, headers: { 'x-api-key': '{{secret:API_TOKEN}}' }, maxResponseBytes: 112 });
    assert.equal(res.truncated, true);
    assert.ok(!res.body.includes(VALUE.slice(0, 6)), `a piece of the value survived: ${res.body.length} characters`);
  });

  it('blocks a secret value the code wrote itself, in any encoding, even towards its own allowed host', async () => {
    const b64 = Buffer.from(`{"k":"${VALUE}"}`).toString('base64');
    const reversed = [...VALUE].reverse().join('');
    await refused({ url: `${A}/record?q=${VALUE}` }, /URL carries the value of a vault secret/);
    await refused({ url: `${B}/record`, headers: { 'x-note': b64 } }, /header "x-note" carries the value of a vault secret \(encoded: base64/);
    await refused({ url: `${B}/record`, method: 'POST', body: `look: ${reversed}` }, /body carries the value of a vault secret \(encoded: reversed\)/);
    await refused({ url: `${B}/record`, method: 'POST', body: Buffer.from(OTHER_VALUE).toString('hex') }, /encoded: hex/);
    const blocked = events.filter((e) => e.kind === 'leak_blocked');
    assert.ok(blocked.some((e) => e.secrets.includes('API_TOKEN')) && blocked.some((e) => e.secrets.includes('OTHER_TOKEN')));
  });

  it('refuses raw credentials written by the code and lets ordinary requests through', async () => {
    const ghp = `ghp_${'aB3dE6gH9jK2mN5pQ8sT1vW4yZ7bC0eF3hJ6'}`;
    await refused({ url: `${B}/record`, headers: { authorization: `Bearer ${ghp}` } }, /carries a credential|header "authorization" was written by the code/);
    await refused({ url: `${B}/record`, headers: { authorization: 'Basic dXNlcjpwYXNz' } }, /header "authorization" was written by the code, not built from a secret handle/);
    await refused({ url: `${B}/record`, headers: { 'x-api-key': 'Zk3Lm9Qp2Rt7Vw4Xy8' } }, /header "x-api-key" carries a token written by the code/);
    await refused({ url: `${B}/record`, headers: { cookie: 'theme=dark; session=Zk3Lm9Qp2Rt7Vw4Xy8' } }, /header "cookie" carries a token/);
    await refused({ url: `${B}/record?access_token=Zk3Lm9Qp2Rt7Vw4Xy8` }, /query parameter "access_token" carries a token/);
    await refused({ url: `${B}/record`, method: 'POST', body: `{"note":"${ghp}"}` }, /body carries a credential \(github-token\)/);
    const ok = await send({ url: `${B}/record?page=2&q=hello%20world&token=short`, headers: { accept: 'application/json', 'x-request-id': '5f0c2a1e-8b7d-4c3e-9a6f-1d2e3f4a5b6c', cookie: 'theme=dark' } });
    assert.equal(ok.status, 200);
  });

  it('records every decision without a secret value', () => {
    assert.ok(events.some((e) => e.kind === 'request' && e.secrets.includes('API_TOKEN') && e.status === 200));
    assert.ok(events.some((e) => e.kind === 'refused' && e.secrets.includes('API_TOKEN') && /DELETE/.test(e.reason ?? '')));
    const json = JSON.stringify(events);
    for (const v of [VALUE, OTHER_VALUE, 'hdrOnly_7Tq2Xz9Pm4']) for (const form of forms(v)) assert.ok(!json.includes(form), 'an event holds a secret value');
  });
});

describe('secret grants', () => {
  it('spell secret names the way the vault does', () => {
    assert.equal(GRANT_SECRET_NAME.source, SECRET_NAME.source);
  });

  it('come from the manifest\'s [capabilities].secrets, validated', () => {
    assert.deepEqual(grantFromManifest('[capabilities]\nhttp = ["api.github.com"]\nsecrets = ["GITHUB_TOKEN", "GITHUB_TOKEN"]').grant.secrets, ['GITHUB_TOKEN']);
    assert.throws(() => grantFromManifest('[capabilities]\nsecrets = ["not a name"]'), (err: Error) => err instanceof ManifestError && /secrets/.test(err.message));
    assert.throws(() => normalizeGrant({ http: [], tools: [], secrets: ['{{secret:X}}'] }), /secrets/);
    assert.equal(normalizeGrant({ http: [], tools: [] }).secrets, undefined);
  });
});
