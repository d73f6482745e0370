import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Queue } from 'bullmq';
import { PREFIX, bullConnection, outboundQueueName } from '../src/queues.js';
import { lastUserText, startLlmStandIn, type ChatRequest, type StandIn } from './support/llm-standin.js';
import { startRedis, type Service } from './support/services.js';
import { standInEnv } from './support/hub.js';
import { BOT_USER_ID, slashCommand, startSlackStandIn, type SlackStandIn } from './support/slack-standin.js';
import { GENERAL, OWNER, dm, inChannel, slackCheck, startSlackHub, until, withText, type Running } from './support/slack-hub.js';

/*
 * Files the agent sends (the send_file tool) arriving on Slack: the real hub with its default tools,
 * the LLM stand-in calling send_file, Bolt's WebClient running files.uploadV2 (getUploadURLExternal →
 * POST of the bytes → completeUploadExternal) against the Slack stand-in.
 */

/** A real 1×1 PNG. */
const PNG_B64 = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';
const PNG = Buffer.from(PNG_B64, 'base64');
const DM_CHANNEL = 'DOWNER01';

/** The model's answer: send_file calls for the markers in the user's text, then an echo. */
function script(req: ChatRequest) {
  const text = lastUserText(req);
  if (req.messages.some((m) => m.role === 'tool')) return { text: `echo: ${text}` };
  const tag = /\[(\w+)\]/.exec(text)?.[1] ?? 'x';
  const calls: Array<{ name: string; args: unknown }> = [];
  if (text.includes('FILE')) calls.push({ name: 'send_file', args: { name: `report-${tag}.csv`, content: `a,b\n${tag},2\n` } });
  if (text.includes('IMAGE')) calls.push({ name: 'send_file', args: { name: `dot-${tag}.png`, content: PNG_B64, encoding: 'base64' } });
  return calls.length > 0 ? { toolCalls: calls } : { text: `echo: ${text}` };
}

describe('Slack: files the agent sends (send_file → files.uploadV2)', () => {
  let redis: Service;
  let llm: StandIn;
  let slack: SlackStandIn;
  let t: Running;
  const sharedNamed = (filename: string) => slack.shared.filter((f) => f.filename === filename);
  const uploadSlots = (filename: string) => slack.callsOf('files.getUploadURLExternal').filter((c) => c.args.filename === filename);

  before(async () => {
    redis = await startRedis();
    llm = await startLlmStandIn(script);
    slack = await startSlackStandIn();
    // No `tools:` anywhere: the hub's default toolset, where send_file is registered.
    t = await startSlackHub({
      redisUrl: redis.url,
      env: { ...standInEnv(llm.baseUrl), BULWARK_WORKER_SHUTDOWN_MS: '300' },
      toml: `[channels.slack]\nenabled = true\napi_url = "${slack.apiUrl}"\nowners = ["${OWNER}"]\ngroups = ["${GENERAL}"]\nrate_per_chat_ms = 0\n`,
    });
    await until('slack connected', async () => (await slackCheck(t.hub.url)).ok);
  });
  after(async () => { await t?.close(); await slack?.close(); await llm?.close(); await redis?.stop(); });

  it('a DM: the text reply, then the file shared in the DM with its exact bytes, name and title', async () => {
    await slack.sendEvent(dm(OWNER, DM_CHANNEL, 'FILE please [dm]'));
    const [file] = await until('the shared file', () => sharedNamed('report-dm.csv'));
    assert.equal(file!.channel, DM_CHANNEL);
    assert.equal(file!.threadTs, undefined, 'a DM is answered at top level');
    assert.equal(file!.title, 'report-dm.csv');
    assert.equal(file!.bytes.toString('utf8'), 'a,b\ndm,2\n');
    const [text] = withText(slack, DM_CHANNEL, 'echo: FILE please [dm]');
    assert.ok(text, 'the text reply arrived');
    const complete = slack.callsOf('files.completeUploadExternal').find((c) => String(c.args.files).includes(file!.id))!;
    assert.ok(slack.calls.indexOf(text!) < slack.calls.indexOf(complete), 'the file follows the text');
    // The bytes went to the upload URL the stand-in handed out, in one multipart POST.
    const posted = slack.callsOf('upload').filter((c) => c.args.file_id === file!.id);
    assert.deepEqual(posted.map((c) => c.args.length), [Buffer.byteLength('a,b\ndm,2\n')]);
    assert.equal(typeof posted[0]!.args.filename, 'string', 'as a multipart file part');
  });

  it('a mention in a channel: text and files (an image too) in the thread on that message', async () => {
    const mention = inChannel('UMEMBER1', `<@${BOT_USER_ID}> IMAGE and FILE [thread]`);
    await slack.sendEvent(mention);
    const [png] = await until('the image', () => sharedNamed('dot-thread.png'));
    const [csv] = await until('the csv', () => sharedNamed('report-thread.csv'));
    for (const f of [png!, csv!]) {
      assert.equal(f.channel, GENERAL);
      assert.equal(f.threadTs, mention.ts, `${f.filename} goes into the thread`);
    }
    assert.ok(png!.bytes.equals(PNG), 'the exact PNG bytes');
    assert.equal(csv!.bytes.toString('utf8'), 'a,b\nthread,2\n');
    assert.equal(withText(slack, GENERAL, 'echo: IMAGE and FILE [thread]').length, 1);
  });

  it('a job retried after a failed upload sends neither the text nor the earlier file again', async () => {
    // The CSV is shared (first completeUploadExternal), the PNG's completion fails once → the job is retried.
    slack.failNext('files.completeUploadExternal', { error: 'internal_error' }, 1, 1);
    await slack.sendEvent(dm(OWNER, DM_CHANNEL, 'FILE and IMAGE [retry]'));
    await until('the image after the retry', () => sharedNamed('dot-retry.png'));
    await slack.sendEvent(dm(OWNER, DM_CHANNEL, 'marker [r]'));
    await until('the marker reply', () => withText(slack, DM_CHANNEL, 'echo: marker [r]').length === 1);
    assert.equal(withText(slack, DM_CHANNEL, 'echo: FILE and IMAGE [retry]').length, 1, 'the text once');
    assert.equal(sharedNamed('report-retry.csv').length, 1, 'the CSV once');
    assert.equal(uploadSlots('report-retry.csv').length, 1, 'the CSV was not even uploaded again');
    assert.equal(sharedNamed('dot-retry.png').length, 1, 'the PNG once');
    assert.equal(uploadSlots('dot-retry.png').length, 2, 'the PNG: one failed attempt, one delivery');
  });

  it('429 with Retry-After on the upload of the bytes: delivered later, once', async () => {
    slack.failNext('upload', { status: 429, retryAfter: 1 });
    await slack.sendEvent(dm(OWNER, DM_CHANNEL, 'FILE [limited]'));
    const [file] = await until('the file after the limit', () => sharedNamed('report-limited.csv'));
    const [first, second] = uploadSlots('report-limited.csv');
    assert.ok(second, 'a second attempt');
    assert.ok(second.at - first!.at >= 1000, 'the retry honours Retry-After');
    assert.equal(file!.bytes.toString('utf8'), 'a,b\nlimited,2\n');
    await slack.sendEvent(dm(OWNER, DM_CHANNEL, 'marker [l]'));
    await until('the marker reply', () => withText(slack, DM_CHANNEL, 'echo: marker [l]').length === 1);
    assert.equal(sharedNamed('report-limited.csv').length, 1);
    assert.equal(uploadSlots('report-limited.csv').length, 2, 'one rate-limited attempt, one delivery');
    assert.equal(withText(slack, DM_CHANNEL, 'echo: FILE [limited]').length, 1, 'the text was not re-sent');
  });

  it('without the files:write scope: the text arrives, the file is given up at once (no retries)', async () => {
    slack.failNext('files.getUploadURLExternal', { error: 'missing_scope' });
    await slack.sendEvent(dm(OWNER, DM_CHANNEL, 'FILE [scope]'));
    await until('the text reply', () => withText(slack, DM_CHANNEL, 'echo: FILE [scope]').length === 1);
    // The outbound job fails for good (no retry can come after that), with a message naming the scope.
    const queue = new Queue(outboundQueueName('slack'), { connection: bullConnection({ url: redis.url }), prefix: PREFIX });
    try {
      const job = await until('the job to fail for good', async () => (await queue.getFailed()).find((j) => /missing_scope/.test(j.failedReason)));
      assert.match(job.failedReason, /needs files:write/);
      assert.equal(job.attemptsMade, 1, 'one attempt');
    } finally {
      await queue.close();
    }
    assert.equal(uploadSlots('report-scope.csv').length, 1, 'asked once, never retried');
    assert.equal(sharedNamed('report-scope.csv').length, 0);
  });

  it('a slash command answered privately: the file is not posted to the channel; a private note says so', async () => {
    await slack.sendSlashCommand(slashCommand({ user_id: OWNER, channel_id: GENERAL, text: 'FILE [slash]' }));
    const note = await until('the private note', () => slack.callsOf('chat.postEphemeral').find((c) => String(c.args.text).includes('report-slash.csv')));
    assert.equal(note.args.user, OWNER);
    assert.match(String(note.args.text), /ask me in a DM/);
    assert.equal(uploadSlots('report-slash.csv').length, 0, 'nothing uploaded');
    assert.equal(sharedNamed('report-slash.csv').length, 0);
  });
});
