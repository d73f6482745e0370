// The whole path from guest code: tools.http.fetch with a handle, through the Sandbox, the vault's
// egress and the policy egress, to a real server that echoes the credential back.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createPolicyEgress, createRunCodeTool, Sandbox, type CapabilityGrant } from '../sandbox/index.js';
import { kind, value } from '../sandbox/test-helpers.js';
import { createVaultEgress, type EgressEvent } from './egress.js';
import { secretPolicySchema } from './policy.js';
import { memorySecretSource } from './source.js';

const VALUE = 'sbx_Q8wE3rT6yU1iO4pA7sD0';
const FORMS = [VALUE, Buffer.from(VALUE).toString('base64').slice(0, 24), Buffer.from(VALUE).toString('hex'), [...VALUE].reverse().join('')];

describe('secret handles from sandbox code', () => {
  let server: Server;
  let base = '';
  let other = '';
  const received: string[] = [];
  const events: EgressEvent[] = [];
  let sandbox: Sandbox;

  before(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => { body += c; });
      req.on('end', () => {
        const auth = req.headers.authorization ?? '';
        received.push(`${auth}|${body}`);
        res.writeHead(200, { 'x-echo': auth, 'x-echo-hex': Buffer.from(auth).toString('hex') });
        res.end(JSON.stringify({ auth, body, b64: Buffer.from(body).toString('base64') }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    base = `http://127.0.0.1:${port}`;
    other = `http://localhost:${port}`; // the same server under another origin, not in the policy
    const source = memorySecretSource({
      API_TOKEN: { value: VALUE, policy: secretPolicySchema.parse({ hosts: [base], headers: ['Authorization: Bearer {value}'], body: true }) },
    });
    sandbox = new Sandbox({ workers: 1, egress: createVaultEgress(createPolicyEgress(), source, { onEvent: (e) => events.push(e) }) });
  });
  after(async () => {
    await sandbox.close();
    await new Promise((r) => server.close(r));
  });

  const grant: () => CapabilityGrant = () => ({ http: [base, other], tools: [], secrets: ['API_TOKEN'] });

  it('sends the value where the policy allows and never shows it to the guest, even when echoed', async () => {
    const r = await sandbox.run(`
      const res = await tools.http.fetch(${JSON.stringify(`${base}/api`)}, { method: 'POST', headers: { authorization: secrets.API_TOKEN }, body: 'token=' + secrets.API_TOKEN });
      console.log(res.headers['x-echo'], res.headers['x-echo-hex']);
      return { handles: secrets, status: res.status, body: JSON.parse(res.body) };
    `, { grant: grant() });
    const out = value(r) as { handles: Record<string, string>; status: number; body: Record<string, string> };
    assert.deepEqual(out.handles, { API_TOKEN: '{{secret:API_TOKEN}}' });
    assert.equal(out.status, 200);
    assert.equal(received.at(-1), `Bearer ${VALUE}|token=${VALUE}`);
    assert.match(out.body.auth!, /^Bearer \[REDACTED:API_TOKEN\]$/);
    const seen = JSON.stringify(r);
    for (const form of FORMS) assert.ok(!seen.includes(form), 'the guest saw the secret in some form');
  });

  it('ends the run with a capability error the model can act on when the policy does not allow it', async () => {
    const before = received.length;
    const r = await sandbox.run(`await tools.http.fetch(${JSON.stringify(`${other}/api`)}, { headers: { authorization: secrets.API_TOKEN } })`, { grant: grant() });
    assert.equal(kind(r), 'capability');
    assert.match(r.ok ? '' : r.error.message, /API_TOKEN may not be sent to http:\/\/localhost:\d+; its policy allows hosts http:\/\/127\.0\.0\.1:\d+/);
    assert.equal(received.length, before);
    assert.ok(!JSON.stringify(events).includes(VALUE));
  });

  it('gives the guest no handles without a grant, and tells the model which it has', async () => {
    assert.equal(value(await sandbox.run('return typeof secrets', { grant: { http: [base], tools: [] } })), 'undefined');
    const tool = createRunCodeTool({ sandbox, grant: grant() });
    assert.match(tool.description, /secrets\.API_TOKEN = "\{\{secret:API_TOKEN\}\}"/);
  });
});
