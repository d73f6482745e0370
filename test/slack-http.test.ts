import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { createLogger } from '../src/logger.js';
import { lastUserText, startLlmStandIn, type StandIn } from './support/llm-standin.js';
import { startRedis, type Service } from './support/services.js';
import { standInEnv } from './support/hub.js';
import { APP_TOKEN, BOT_TOKEN, SIGNING_SECRET, eventCallback, postSigned, signSlackRequest, slashCommand, startSlackStandIn, type SlackStandIn } from './support/slack-standin.js';
import { OWNER, dm, slackCheck, startSlackHub, until, withText, type Running } from './support/slack-hub.js';

/*
 * The real @slack/bolt against a local Slack stand-in: HTTP mode (signed events posted to the hub)
 * and what bad or missing tokens do. Socket Mode: slack.test.ts.
 */

describe('Slack: bad tokens give a clear status and no retry loop', () => {
  let redis: Service;
  let slack: SlackStandIn;
  before(async () => { redis = await startRedis(); slack = await startSlackStandIn(); });
  after(async () => { await slack?.close(); await redis?.stop(); });

  for (const which of ['bot', 'app'] as const) {
    it(`an invalid ${which} token parks the channel in "error" with one log line`, async () => {
      const lines: string[] = [];
      const logger = createLogger({ level: 'info', pretty: false, destination: new Writable({ write(c, _e, cb) { lines.push(String(c)); cb(); } }) } as Parameters<typeof createLogger>[0]);
      const badBot = 'xoxb-revoked-token-0000000000';
      const badApp = 'xapp-revoked-token-0000000000';
      const secrets = which === 'bot' ? { 'slack.bot_token': badBot, 'slack.app_token': APP_TOKEN } : { 'slack.bot_token': BOT_TOKEN, 'slack.app_token': badApp };
      const before = { auth: slack.callsOf('auth.test').length, open: slack.callsOf('apps.connections.open').length };
      const t = await startSlackHub({ redisUrl: redis.url, env: {}, toml: `[channels.slack]\nenabled = true\napi_url = "${slack.apiUrl}"\n`, secrets, logger });
      try {
        const s = await until('error status', async () => { const c = await slackCheck(t.hub.url); return /invalid_auth/.test(c.detail ?? '') ? c : undefined; });
        assert.equal(s.ok, false);
        assert.match(s.detail!, which === 'bot' ? /auth\.test: Slack answered "invalid_auth": the bot token is not valid/ : /Socket Mode: Slack answered "invalid_auth"/);
        const settle = { auth: slack.callsOf('auth.test').length, open: slack.callsOf('apps.connections.open').length };
        await new Promise((r) => setTimeout(r, 1500));
        assert.equal(slack.callsOf('auth.test').length, settle.auth, 'no auth.test loop');
        assert.equal(slack.callsOf('apps.connections.open').length, settle.open, 'no reconnect loop');
        assert.equal(settle.auth - before.auth, 1);
        assert.equal(settle.open - before.open, which === 'bot' ? 0 : 1);
        const errors = lines.filter((l) => l.includes('"channel stopped"'));
        assert.equal(errors.length, 1, 'one log line');
        const all = lines.join('\n');
        for (const secret of [badBot, badApp, BOT_TOKEN, APP_TOKEN]) assert.ok(!all.includes(secret), 'no token in the logs');
      } finally {
        await t.close();
      }
    });
  }
});

describe('Slack: a missing token says which one and how to add it', () => {
  it('Socket Mode without slack.app_token', async () => {
    const redis = await startRedis();
    const t = await startSlackHub({ redisUrl: redis.url, env: {}, toml: '[channels.slack]\nenabled = true\napi_url = "http://127.0.0.1:9/api/"\n', secrets: { 'slack.bot_token': BOT_TOKEN } });
    try {
      const s = await slackCheck(t.hub.url);
      assert.equal(s.ok, false);
      assert.match(s.detail!, /app-level token .*bulwark secret add slack\.app_token/);
      assert.equal((await fetch(`${t.hub.url}/healthz`)).status, 200, 'the hub runs without the channel');
    } finally {
      await t.close();
      await redis.stop();
    }
  });
});

describe('Slack (HTTP mode): signed events on the hub', () => {
  let redis: Service;
  let llm: StandIn;
  let slack: SlackStandIn;
  let t: Running;
  let url: string;

  before(async () => {
    redis = await startRedis();
    llm = await startLlmStandIn();
    llm.setHandler((req) => ({ text: `echo: ${lastUserText(req)}` }));
    slack = await startSlackStandIn();
    t = await startSlackHub({
      redisUrl: redis.url, env: standInEnv(llm.baseUrl), secrets: { 'slack.bot_token': BOT_TOKEN, 'slack.signing_secret': SIGNING_SECRET },
      toml: `[channels.slack]\nenabled = true\nmode = "http"\napi_url = "${slack.apiUrl}"\nowners = ["${OWNER}"]\nrate_per_chat_ms = 0\n`,
    });
    url = `${t.hub.url}/slack/events`;
    await until('slack ready', async () => (await slackCheck(t.hub.url)).ok);
  });
  after(async () => { await t?.close(); await slack?.close(); await llm?.close(); await redis?.stop(); });

  it('answers a signed event once, also when Slack retries it with X-Slack-Retry-Num', async () => {
    const body = JSON.stringify(eventCallback(dm(OWNER, 'DHTTP0001', 'over http'), 'EvHTTP1'));
    assert.equal((await postSigned(url, body)).status, 200);
    assert.equal((await postSigned(url, body, { retryNum: 1 })).status, 200, 'the retry is acknowledged');
    await until('reply', () => withText(slack, 'DHTTP0001', 'echo: over http').length > 0);
    assert.equal((await postSigned(url, body, { retryNum: 2 })).status, 200);
    assert.equal((await postSigned(url, JSON.stringify(eventCallback(dm(OWNER, 'DHTTP0001', 'marker'))))).status, 200);
    await until('marker', () => withText(slack, 'DHTTP0001', 'echo: marker').length > 0);
    assert.equal(withText(slack, 'DHTTP0001', 'echo: over http').length, 1);
  });

  it('rejects bad signatures (401) and malformed bodies (400); the hub stays up', async () => {
    const body = JSON.stringify(eventCallback(dm(OWNER, 'DHTTP0002', 'forged')));
    const now = Math.floor(Date.now() / 1000);
    assert.equal((await postSigned(url, body, { secret: 'wrong-secret' })).status, 401, 'wrong secret');
    assert.equal((await postSigned(url, body, { signature: 'v0=deadbeef' })).status, 401, 'garbage signature');
    assert.equal((await postSigned(url, body, { timestamp: now - 600 })).status, 401, 'replayed (stale) request');
    assert.equal((await postSigned(url, body, { timestamp: now + 600 })).status, 401, 'timestamp from the future');
    const tampered = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', 'x-slack-request-timestamp': String(now), 'x-slack-signature': signSlackRequest(SIGNING_SECRET, now, body) }, body: body.replace('forged', 'FORGED') });
    assert.equal(tampered.status, 401, 'body changed after signing');
    assert.equal((await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body })).status, 401, 'unsigned');
    assert.equal((await postSigned(url, '{not json')).status, 400);
    assert.equal((await postSigned(url, '[1,2]')).status, 400);
    assert.equal((await postSigned(url, JSON.stringify({ type: 'event_callback' }))).status, 400, 'an event callback without an event');
    assert.equal((await postSigned(url, JSON.stringify({ hello: 'world' }))).status, 400);
    assert.equal((await postSigned(url, JSON.stringify(eventCallback({ type: 'message', channel: 'DHTTP0002', user: OWNER, text: 'x' })))).status, 200, 'a signed but invalid event is acked and dropped');
    const challenge = await postSigned(url, JSON.stringify({ type: 'url_verification', challenge: 'abc123' }));
    assert.deepEqual(JSON.parse(challenge.text), { challenge: 'abc123' });
    assert.equal((await fetch(`${t.hub.url}/healthz`)).status, 200);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(slack.calls.filter((c) => c.args.channel === 'DHTTP0002').length, 0, 'nothing forged reached the agent');
  });

  it('answers a signed slash command (form-encoded)', async () => {
    const form = new URLSearchParams(slashCommand({ user_id: OWNER, channel_id: 'DHTTP0003', text: 'http slash' })).toString();
    const r = await postSigned(url, form, { contentType: 'application/x-www-form-urlencoded' });
    assert.equal(r.status, 200);
    assert.deepEqual(JSON.parse(r.text), { response_type: 'ephemeral', text: 'Working on it…' });
    await until('slash reply', () => withText(slack, 'DHTTP0003', 'echo: http slash').length > 0);
  });
});
