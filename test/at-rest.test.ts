import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { loadConfig } from '../src/config/load.js';
import { openDb, resolveDbTarget } from '../src/db/client.js';
import { startHub, type Hub } from '../src/hub.js';
import { createLogger } from '../src/logger.js';
import { openVaultOn } from '../src/vault/index.js';
import { ApiClient, standInEnv } from './support/hub.js';
import { lastUserText, startLlmStandIn, type StandIn } from './support/llm-standin.js';
import { startRedis, type Service } from './support/services.js';

/*
 * The at-rest promises, end to end: after a real conversation through the hub, the database files
 * and a Redis dump hold no message text, no log line holds a secret, and neither the LLM provider
 * nor the chat ever receives a vault secret, even when the user pastes one or the model repeats it.
 */

const SECRET = 'ghp_atRestSecret0123456789abcdefABCDEFGH';
const WORDS = 'purple-elephant-7731';
const API_KEY = 'sk-test-standin-key';

describe('end to end: nothing readable at rest, no secret in logs, LLM requests or replies', () => {
  let redis: Service;
  let llm: StandIn;
  let hub: Hub;
  let api: ApiClient;
  const home = mkdtempSync(join(tmpdir(), 'bulwark-at-rest-'));
  const logLines: string[] = [];

  before(async () => {
    redis = await startRedis({ dir: home });
    // The model repeats whatever secret-looking thing it was shown, raw and base64 — a tricked model.
    llm = await startLlmStandIn((req) => ({ text: `You said: ${lastUserText(req)}. Also ${SECRET} and ${Buffer.from(SECRET).toString('base64')}` }));
    const loaded = loadConfig({ BULWARK_HOME: home, BULWARK_PORT: '0', REDIS_URL: redis.url, ...standInEnv(llm.baseUrl) }, home);
    const db = await openDb(resolveDbTarget(undefined, home));
    const { vault } = await openVaultOn(db, home, { create: true, env: {} });
    await vault.add('GITHUB_TOKEN', SECRET, { hosts: ['api.github.com'], headers: ['Authorization: Bearer {value}'] });
    await db.$disconnect();
    const sink = new Writable({ write(chunk, _enc, cb) { logLines.push(String(chunk)); cb(); } });
    const logger = createLogger({ level: 'trace', pretty: false, destination: sink });
    hub = await startHub({ loaded, role: 'all', logger });
    api = new ApiClient(hub.url, readFileSync(join(home, 'api-token'), 'utf8').trim());
    // A log call that carries a secret by mistake: the scrubber must catch it on its way out.
    logger.info({ note: `oops ${SECRET}` }, 'a careless log line');
  });
  after(async () => { await hub?.close(); await llm?.close(); await redis?.stop(); rmSync(home, { recursive: true, force: true }); });

  it('a conversation in which the user pastes the secret and the model repeats it', async () => {
    const sent = await api.send(`remember ${WORDS}; my token is ${SECRET}`);
    const reply = await api.waitReply(sent.conversationId, sent.messageId);
    assert.ok(!reply.text.includes(SECRET) && !reply.text.includes(Buffer.from(SECRET).toString('base64')), 'the reply carries the secret');
    assert.match(reply.text, /\[REDACTED:GITHUB_TOKEN\]/);
    assert.match(reply.text, new RegExp(WORDS), 'ordinary text passes');
    const sentToLlm = JSON.stringify(llm.requests);
    assert.ok(sentToLlm.includes(WORDS), 'the stand-in saw the conversation');
    assert.ok(!sentToLlm.includes(SECRET), 'a vault secret was sent to the LLM provider');
    assert.match(sentToLlm, /\[REDACTED:GITHUB_TOKEN/);
  });

  it('a Redis dump holds no message text', async () => {
    const c = new Redis(redis.url);
    try {
      await c.config('SET', 'rdbcompression', 'no');
      await c.save();
      const dump = readFileSync(join(home, 'dump.rdb')).toString('latin1');
      assert.ok(dump.includes('bull'), 'the dump holds the queues');
      assert.ok(!dump.includes(WORDS), 'message text in the Redis dump');
      assert.ok(!dump.includes('You said'), 'reply text in the Redis dump');
      assert.ok(!dump.includes(SECRET));
    } finally {
      c.disconnect();
    }
  });

  it('the database files hold no message text and no secret', async () => {
    await hub.close();
    const files = readdirSync(home).filter((f) => f.startsWith('bulwark.db'));
    assert.ok(files.length > 0);
    const bytes = files.map((f) => readFileSync(join(home, f)).toString('latin1')).join('');
    assert.ok(!bytes.includes(WORDS), 'message text in the database');
    assert.ok(!bytes.includes('You said'), 'reply text in the database');
    assert.ok(!bytes.includes(SECRET), 'the secret in the database');
  });

  it('each leak is in the audit log by name and place, never by value', async () => {
    const db = await openDb(resolveDbTarget(undefined, home));
    try {
      const leaks = await db.auditEntry.findMany({ where: { kind: 'leak.detected' } });
      const places = new Set(leaks.map((e) => e.subject));
      assert.ok(places.has('reply') && places.has('llm'), `leak places audited: ${[...places].join(', ')}`);
      assert.match(leaks.map((e) => e.data).join(''), /"name":"GITHUB_TOKEN"/);
      const all = JSON.stringify(await db.auditEntry.findMany());
      assert.ok(!all.includes(SECRET) && !all.includes(WORDS), 'a secret or message text in the audit log');
    } finally {
      await db.$disconnect();
    }
  });

  it('no log line holds the secret, the LLM key or message text (trace level)', () => {
    const logs = logLines.join('');
    assert.ok(logLines.length > 5, 'the hub logged');
    assert.match(logs, /a careless log line/);
    assert.ok(!logs.includes(SECRET), 'the secret in the logs');
    assert.ok(!logs.includes(API_KEY), 'the LLM API key in the logs');
    assert.ok(!logs.includes(WORDS), 'message text in the logs');
  });
});
