import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { webApi } from '@slack/bolt';
import { PermanentSendError, RetryAfter, SendOutcomeUnknown } from '../delivery.js';
import { freePort } from '../../../test/support/services.js';
import { BOT_TOKEN, startSlackStandIn, type SlackStandIn } from '../../../test/support/slack-standin.js';
import { describeSlackError, isAuthError, toDeliveryError } from './errors.js';

/* Real WebClient failures (from the stand-in, a closed port, a server that never answers) → what delivery does. */

const client = (url: string, token = BOT_TOKEN, timeout = 0) =>
  new webApi.WebClient(token, { slackApiUrl: url, retryConfig: { retries: 0 }, rejectRateLimitedCalls: true, timeout });

async function failure(p: Promise<unknown>): Promise<unknown> {
  try { await p; } catch (err) { return err; }
  throw new Error('expected the call to fail');
}

describe('Slack Web API errors → delivery outcomes', () => {
  let slack: SlackStandIn;
  let silent: Server;
  let silentUrl: string;
  before(async () => {
    slack = await startSlackStandIn();
    silent = createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    silentUrl = `http://127.0.0.1:${(silent.address() as AddressInfo).port}/api/`;
  });
  after(async () => { silent.closeAllConnections(); silent.close(); await slack.close(); });

  it('ratelimited (429 + Retry-After) → RetryAfter with the delay', async () => {
    slack.failNext('chat.postMessage', { status: 429, retryAfter: 7 });
    const err = toDeliveryError(await failure(client(slack.apiUrl).chat.postMessage({ channel: 'C1', text: 'x' })));
    assert.ok(err instanceof RetryAfter);
    assert.equal(err.ms, 7000);
  });

  it('a chat that cannot take the message → PermanentSendError with a hint', async () => {
    slack.failNext('chat.postMessage', { error: 'not_in_channel' });
    const err = toDeliveryError(await failure(client(slack.apiUrl).chat.postMessage({ channel: 'C1', text: 'x' })));
    assert.ok(err instanceof PermanentSendError);
    assert.match(err.message, /not_in_channel.*\/invite/);
  });

  it('missing_scope on a file upload → PermanentSendError naming the scope Slack asked for', async () => {
    slack.failNext('files.getUploadURLExternal', { error: 'missing_scope' });
    const err = toDeliveryError(await failure(client(slack.apiUrl).files.uploadV2({ channel_id: 'C1', file: Buffer.from('a,b\n'), filename: 'a.csv' })));
    assert.ok(err instanceof PermanentSendError);
    assert.match(err.message, /"missing_scope" \(needs files:write\): add the missing OAuth scope/);
  });

  it('bad or revoked tokens are auth errors, described without the token', async () => {
    const bad = 'xoxb-not-a-valid-token-123456';
    const err = await failure(client(slack.apiUrl, bad).auth.test());
    assert.equal(isAuthError(err), true);
    assert.match(describeSlackError(err), /"invalid_auth": the bot token is not valid/);
    slack.failNext('chat.postMessage', { error: 'token_revoked' });
    const revoked = await failure(client(slack.apiUrl).chat.postMessage({ channel: 'C1', text: 'x' }));
    assert.equal(isAuthError(revoked), true);
    assert.ok(!describeSlackError(revoked).includes(BOT_TOKEN));
  });

  it('connection refused → a plain error (not sent: retry); no answer → SendOutcomeUnknown (never re-sent)', async () => {
    const closedPort = await freePort();
    const refused = toDeliveryError(await failure(client(`http://127.0.0.1:${closedPort}/api/`).chat.postMessage({ channel: 'C1', text: 'x' })));
    assert.ok(!(refused instanceof SendOutcomeUnknown) && !(refused instanceof PermanentSendError) && !(refused instanceof RetryAfter));
    assert.match(refused.message, /cannot reach Slack: ECONNREFUSED/);
    const timedOut = toDeliveryError(await failure(client(silentUrl, BOT_TOKEN, 200).chat.postMessage({ channel: 'C1', text: 'x' })));
    assert.ok(timedOut instanceof SendOutcomeUnknown, `got ${timedOut.name}: ${timedOut.message}`);
  });
});
