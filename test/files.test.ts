import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../src/config/load.js';
import { openDb, resolveDbTarget } from '../src/db/client.js';
import { startHub, type Hub } from '../src/hub.js';
import { silentLogger } from '../src/logger.js';
import { openVaultOn } from '../src/vault/index.js';
import { ApiClient, standInEnv } from './support/hub.js';
import { lastUserText, startLlmStandIn, type ChatRequest, type StandIn } from './support/llm-standin.js';
import { runCli } from './support/process.js';
import { startRedis, type Service } from './support/services.js';

/*
 * Files the agent sends back (send_file), through the real hub, Redis, the agent worker and the LLM
 * stand-in, read back the way the web chat and `bulwark chat` do. The model is scripted to be tricked:
 * it tries to ship a vault secret, an executable, a path in the name and an HTML page.
 */

const SECRET = 'ghp_FilesTestSecretValue0123456789abcdefXYZ';
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==', 'base64');
const CSV = 'name,score\nada,3\nbob,5\n';

/** What the model "does" for each request word; the second call of a turn reports the tool's result. */
const scripts: Record<string, Array<{ name: string; content: string; encoding?: 'utf8' | 'base64' }>> = {
  CSV: [{ name: 'scores.csv', content: CSV }],
  PNG: [{ name: 'dot.png', content: PNG.toString('base64'), encoding: 'base64' }],
  LEAK: [{ name: 'notes.txt', content: `token for later: ${SECRET}\n` }],
  EXE: [{ name: 'tool.exe', content: Buffer.from([0x4d, 0x5a, 0x90, 0x00, 0x03, 0x00, 0x00, 0x00, 0xff, 0xfe]).toString('base64'), encoding: 'base64' }],
  SNEAKY: [{ name: '../../etc/invoice.html', content: '<html><script>alert(1)</script></html>' }],
  MANY: Array.from({ length: 7 }, (_, i) => ({ name: `f${i}.txt`, content: `file ${i}\n` })),
};

function toolResults(req: ChatRequest): string[] {
  return req.messages.filter((m) => m.role === 'tool').map((m) => (typeof m.content === 'string' ? m.content : JSON.stringify(m.content)));
}

describe('files the agent sends back (send_file → stored sealed → delivered with the reply)', () => {
  let redis: Service;
  let llm: StandIn;
  let hub: Hub;
  let api: ApiClient;
  const home = mkdtempSync(join(tmpdir(), 'bulwark-files-'));
  const env = () => ({ BULWARK_HOME: home, BULWARK_PORT: String(new URL(hub.url).port), REDIS_URL: redis.url });

  before(async () => {
    redis = await startRedis();
    llm = await startLlmStandIn((req) => {
      const text = lastUserText(req);
      const word = Object.keys(scripts).find((w) => text.includes(w));
      const results = toolResults(req);
      if (word && results.length === 0) return { toolCalls: scripts[word]!.map((args) => ({ name: 'send_file', args })) };
      return { text: results.length > 0 ? `tool said: ${results.join(' | ')}` : `echo: ${text}` };
    });
    const db = await openDb(resolveDbTarget(undefined, home));
    const { vault } = await openVaultOn(db, home, { create: true, env: {} });
    await vault.add('GITHUB_TOKEN', SECRET, { hosts: ['api.github.com'], headers: ['Authorization: Bearer {value}'] });
    await db.$disconnect();
    const loaded = loadConfig({ BULWARK_HOME: home, BULWARK_PORT: '0', REDIS_URL: redis.url, ...standInEnv(llm.baseUrl) }, home);
    hub = await startHub({ loaded, role: 'all', logger: silentLogger() });
    api = new ApiClient(hub.url, readFileSync(join(home, 'api-token'), 'utf8').trim());
  });
  after(async () => { await hub?.close(); await llm?.close(); await redis?.stop(); rmSync(home, { recursive: true, force: true }); });

  async function ask(text: string, conversationId?: string) {
    const sent = await api.send(text, conversationId ? { conversationId } : {});
    await api.waitReply(sent.conversationId, sent.messageId);
    const reply = (await api.messages(sent.conversationId)).find((m) => m.replyTo === sent.messageId) as unknown as { id: string; text: string; files: Array<{ name: string; mime: string; bytes: number; url: string }> };
    return { ...reply, conversationId: sent.conversationId };
  }

  const agentFiles = () => { try { return readdirSync(join(home, 'attachments', 'agent')); } catch { return []; } };

  it('a text file: listed with the reply, downloaded byte for byte as an attachment, stored sealed', async () => {
    const reply = await ask('please send the scores as CSV');
    assert.deepEqual(reply.files.map((f) => [f.name, f.mime, f.bytes]), [['scores.csv', 'text/plain', CSV.length]]);
    const r = await fetch(hub.url + reply.files[0]!.url, { headers: { authorization: `Bearer ${readFileSync(join(home, 'api-token'), 'utf8').trim()}` } });
    assert.equal(r.status, 200);
    assert.equal(await r.text(), CSV);
    assert.match(r.headers.get('content-disposition')!, /^attachment; filename="scores.csv"/);
    assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
    assert.match(r.headers.get('content-type')!, /^text\/plain/);
    // On disk: sealed, 0600, and the CSV nowhere in the clear.
    const [file] = agentFiles();
    const stored = readFileSync(join(home, 'attachments', 'agent', file!));
    assert.ok(!stored.includes('ada,3') && !stored.includes(Buffer.from(CSV).toString('base64')), 'the file is stored in the clear');
    assert.equal(statSync(join(home, 'attachments', 'agent', file!)).mode & 0o777, 0o600);
    // The model hears the file went out; its history names the file on later turns.
    assert.match(reply.text, /"ok":true/);
    await ask('and now?', reply.conversationId);
    assert.match(JSON.stringify(llm.requests.at(-1)!.messages), /\[sent file \\"scores.csv\\", text\/plain, 1 KB\]/);
  });

  it('an image keeps its bytes and gets a matching extension', async () => {
    const reply = await ask('draw a PNG');
    assert.deepEqual(reply.files.map((f) => [f.name, f.mime]), [['dot.png', 'image/png']]);
    const r = await api.request('GET', reply.files[0]!.url);
    assert.equal(r.status, 200);
    const raw = await fetch(hub.url + reply.files[0]!.url, { headers: { authorization: `Bearer ${readFileSync(join(home, 'api-token'), 'utf8').trim()}` } });
    assert.deepEqual(Buffer.from(await raw.arrayBuffer()), PNG);
  });

  it('ATTACK: the model tries to ship a vault secret in a file → refused, nothing stored, the leak is audited', async () => {
    const before = agentFiles().length;
    const reply = await ask('save the LEAK notes');
    assert.deepEqual(reply.files, []);
    assert.match(reply.text, /"kind":"leak"/);
    assert.ok(!reply.text.includes(SECRET));
    assert.equal(agentFiles().length, before, 'a file was stored');
    const db = await openDb(resolveDbTarget(undefined, home));
    try {
      const entries = await db.auditEntry.findMany({ where: { kind: 'leak.detected', subject: 'file' } });
      assert.equal(entries.length, 1);
      assert.match(entries[0]!.data, /GITHUB_TOKEN/);
      assert.ok(!entries[0]!.data.includes(SECRET));
    } finally {
      await db.$disconnect();
    }
    const metrics = await (await fetch(hub.url + '/metrics')).text();
    assert.match(metrics, /bulwark_leaks_total\{place="file"\} [1-9]/);
  });

  it('ATTACK: an executable is refused; a path and .html in the name become a plain text file name', async () => {
    const exe = await ask('send the EXE');
    assert.deepEqual(exe.files, []);
    assert.match(exe.text, /"kind":"type"/);
    const sneaky = await ask('send the SNEAKY page');
    assert.deepEqual(sneaky.files.map((f) => f.name), ['invoice.html.txt']);
    const r = await fetch(hub.url + sneaky.files[0]!.url, { headers: { authorization: `Bearer ${readFileSync(join(home, 'api-token'), 'utf8').trim()}` } });
    assert.match(r.headers.get('content-type')!, /^text\/plain/);
    assert.match(r.headers.get('content-security-policy')!, /sandbox/);
  });

  it('at most 5 files per reply; the rest are refused to the model', async () => {
    const reply = await ask('send MANY files');
    assert.equal(reply.files.length, 5);
    assert.equal((reply.text.match(/"kind":"limit"/g) ?? []).length, 2);
  });

  it('a file is served only in its own conversation and to an authenticated client', async () => {
    const reply = await ask('again the CSV please');
    const other = await ask('hello');
    const url = reply.files[0]!.url;
    assert.equal((await api.request('GET', url.replace(reply.conversationId, other.conversationId))).status, 404);
    assert.equal((await fetch(hub.url + url)).status, 401);
    assert.equal((await api.request('GET', url.replace('index=0', 'index=9'))).status, 400);
  });

  it('`bulwark chat --files DIR` saves the files without overwriting; without it they are named', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bulwark-files-out-'));
    try {
      const first = await runCli(['chat', '-m', 'CSV please', '--files', dir], env());
      assert.equal(first.code, 0, first.stderr);
      const second = await runCli(['chat', '-m', 'CSV again', '--files', dir], env());
      assert.equal(second.code, 0, second.stderr);
      assert.deepEqual(readdirSync(dir).sort(), ['scores (2).csv', 'scores.csv']);
      assert.equal(readFileSync(join(dir, 'scores.csv'), 'utf8'), CSV);
      assert.match(second.stdout, /\[file saved: .*scores \(2\)\.csv, 1 KB\]/);
      const named = await runCli(['chat', '-m', 'CSV once more'], env());
      assert.match(named.stdout, /\[file scores\.csv, 1 KB: run with --files DIR to save it\]/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a file gone from disk is answered 410 (not a server error)', async () => {
    const reply = await ask('one more CSV');
    for (const f of agentFiles()) rmSync(join(home, 'attachments', 'agent', f));
    const r = await api.request('GET', reply.files[0]!.url);
    assert.equal(r.status, 410);
    assert.match(JSON.stringify(r.json), /no longer available/);
  });
});
