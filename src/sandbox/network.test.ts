// The network policy for tools.http.fetch, against a real HTTP server on 127.0.0.1.
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Sandbox, type CapabilityGrant, type RunResult } from './index.js';

function value(r: RunResult): any {
  assert.equal(r.ok, true, r.ok ? '' : `${r.error.kind}: ${r.error.message}`);
  return r.ok ? r.value : undefined;
}

function error(r: RunResult): { kind: string; message: string } {
  assert.equal(r.ok, false, `expected an error, got ${JSON.stringify(r).slice(0, 300)}`);
  return r.ok ? { kind: '', message: '' } : r.error;
}

describe('tools.http.fetch network policy', () => {
  let server: Server;
  let port = 0;
  let inFlight = 0;
  let maxInFlight = 0;
  let lastHeaders: IncomingHttpHeaders = {};
  let sandbox: Sandbox;
  const grant = (...http: string[]): CapabilityGrant => ({ http, tools: [] });

  before(async () => {
    server = createServer((req, res) => {
      const url = req.url ?? '/';
      if (url === '/hello') {
        res.writeHead(200, { 'content-type': 'application/json' });
        return res.end(JSON.stringify({ hello: 'world', method: req.method }));
      }
      if (url === '/echo-headers') {
        lastHeaders = req.headers;
        return res.end('ok');
      }
      if (url === '/redirect-away') {
        res.writeHead(302, { location: 'https://not-granted.example/' });
        return res.end();
      }
      if (url === '/redirect-local') {
        res.writeHead(302, { location: '/hello' });
        return res.end();
      }
      if (url === '/redirect-cross-origin') {
        res.writeHead(307, { location: `http://localhost:${port}/echo-headers` });
        return res.end();
      }
      if (url === '/redirect-loop') {
        res.writeHead(302, { location: '/redirect-loop' });
        return res.end();
      }
      if (url === '/big') {
        res.writeHead(200);
        return res.end('x'.repeat(2 * 1024 * 1024));
      }
      if (url === '/slow') {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        setTimeout(() => { inFlight--; res.end('slow'); }, 30);
        return;
      }
      res.writeHead(404);
      res.end('not found');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
    sandbox = new Sandbox({ workers: 2 });
  });
  after(async () => {
    await sandbox.close();
    await new Promise((resolve) => server.close(resolve));
  });

  it('has no fetch at all without an http grant', async () => {
    assert.equal(value(await sandbox.run('return typeof tools.http')), 'undefined');
  });

  it('refuses a host that is not granted with a capability error', async () => {
    const r = await sandbox.run(`return await tools.http.fetch("http://127.0.0.1:${port}/hello")`, { grant: grant('api.github.com') });
    assert.equal(error(r).kind, 'capability');
    assert.match(error(r).message, /not in this run's http grant/);
    // Same host, other port; same host and port, other scheme: both not granted.
    const otherPort = await sandbox.run(`await tools.http.fetch("http://127.0.0.1:${port + 1}/")`, { grant: grant(`http://127.0.0.1:${port}`) });
    assert.equal(error(otherPort).kind, 'capability');
    const httpsOnly = await sandbox.run(`await tools.http.fetch("http://127.0.0.1:${port}/")`, { grant: grant(`127.0.0.1:${port}`) });
    assert.equal(error(httpsOnly).kind, 'capability');
  });

  it('reaches a loopback http host:port that is granted explicitly', async () => {
    const r = await sandbox.run(`const res = await tools.http.fetch("http://127.0.0.1:${port}/hello"); return { status: res.status, body: JSON.parse(res.body) }`, { grant: grant(`http://127.0.0.1:${port}`) });
    assert.deepEqual(value(r), { status: 200, body: { hello: 'world', method: 'GET' } });
    assert.equal(r.stats.hostCalls, 1);
    const named = await sandbox.run(`return (await tools.http.fetch("http://localhost:${port}/hello", { method: "post", body: "{}" })).status`, { grant: grant(`http://localhost:${port}`) });
    assert.equal(value(named), 200);
  });

  it('refuses private addresses, after DNS resolution, unless the exact host:port is granted', async () => {
    // "localhost" without a port is granted, but it resolves to a loopback address.
    const byName = await sandbox.run('await tools.http.fetch("http://localhost/")', { grant: grant('http://localhost') });
    assert.equal(error(byName).kind, 'capability');
    assert.match(error(byName).message, /resolves to .*private, loopback or link-local/);
    const literal = await sandbox.run('await tools.http.fetch("https://127.0.0.1/")', { grant: grant('127.0.0.1') });
    assert.equal(error(literal).kind, 'capability');
    const metadata = await sandbox.run('await tools.http.fetch("http://169.254.169.254/latest/meta-data/")', { grant: grant('http://169.254.169.254') });
    assert.equal(error(metadata).kind, 'capability');
  });

  it('follows redirects only to granted destinations, re-checking every hop', async () => {
    const g = grant(`http://127.0.0.1:${port}`);
    const local = await sandbox.run(`const r = await tools.http.fetch("http://127.0.0.1:${port}/redirect-local"); return [r.status, r.url]`, { grant: g });
    assert.deepEqual(value(local), [200, `http://127.0.0.1:${port}/hello`]);
    const away = await sandbox.run(`await tools.http.fetch("http://127.0.0.1:${port}/redirect-away")`, { grant: g });
    assert.equal(error(away).kind, 'capability');
    assert.match(error(away).message, /not-granted\.example/);
    const loop = await sandbox.run(`try { await tools.http.fetch("http://127.0.0.1:${port}/redirect-loop") } catch (e) { return e.message }`, { grant: g });
    assert.match(value(loop), /too many redirects/);
  });

  it('drops request headers when a redirect crosses to another origin', async () => {
    const g = grant(`http://127.0.0.1:${port}`, `http://localhost:${port}`);
    lastHeaders = {};
    const r = await sandbox.run(`return (await tools.http.fetch("http://127.0.0.1:${port}/redirect-cross-origin", { headers: { "x-token": "t0ken" } })).status`, { grant: g });
    assert.equal(value(r), 200);
    assert.equal(lastHeaders['x-token'], undefined);
    assert.equal(lastHeaders.host, `localhost:${port}`);
  });

  it('caps the response size and marks the body truncated', async () => {
    const r = await sandbox.run(`const res = await tools.http.fetch("http://127.0.0.1:${port}/big"); return [res.body.length, res.truncated]`, {
      grant: grant(`http://127.0.0.1:${port}`), limits: { hostCallBytes: 64 * 1024 },
    });
    const [length, truncated] = value(r);
    assert.equal(truncated, true);
    assert.ok(length > 0 && length <= 64 * 1024, `body of ${length} characters`);
  });

  it('limits concurrent outbound requests', async () => {
    maxInFlight = 0;
    const code = `const rs = await Promise.all(Array.from({ length: 8 }, () => tools.http.fetch("http://127.0.0.1:${port}/slow"))); return rs.map((r) => r.body)`;
    const r = await sandbox.run(code, { grant: grant(`http://127.0.0.1:${port}`), limits: { concurrentRequests: 2 } });
    assert.deepEqual(value(r), Array(8).fill('slow'));
    assert.ok(maxInFlight <= 2, `the server saw ${maxInFlight} requests at once`);
  });

  it('refuses connection-level headers and malformed requests as catchable errors', async () => {
    const g = grant(`http://127.0.0.1:${port}`);
    const code = `const out = [];
      for (const init of [{ headers: { host: "evil" } }, { headers: { "x-a": "1\\r\\nx-b: 2" } }, { method: "TRACE" }, { method: "GET", body: "x" }, { extra: 1 }]) {
        try { await tools.http.fetch("http://127.0.0.1:${port}/hello", init); out.push("sent") } catch (e) { out.push("refused") }
      }
      return out`;
    assert.deepEqual(value(await sandbox.run(code, { grant: g })), Array(5).fill('refused'));
    const creds = await sandbox.run(`await tools.http.fetch("http://user:pw@127.0.0.1:${port}/hello")`, { grant: g });
    assert.equal(error(creds).kind, 'capability');
  });
});
