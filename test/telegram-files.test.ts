import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Hub } from '../src/hub.js';
import { startTelegramHub } from './support/telegram-hub.js';
import { waitFor } from './support/wait.js';
import { lastUserText, startLlmStandIn, type ChatRequest, type StandIn } from './support/llm-standin.js';
import { startRedis, type Service } from './support/services.js';
import { startTelegramStandIn, type Call, type TelegramStandIn, type TgUser } from './support/telegram-standin.js';

/*
 * Files the agent sends (the send_file tool) arriving on Telegram: the real hub with its default
 * tools, the LLM stand-in calling send_file, grammY uploading multipart to the Telegram stand-in.
 */

const TOKEN = '7000001:AAFakeTokenForTestsOnly_abcdefghijklmno';
const OWNER: TgUser = { id: 111, is_bot: false, first_name: 'Olive' };
const MEMBER: TgUser = { id: 333, is_bot: false, first_name: 'Mia' };
const GROUP = { id: -100500, type: 'supergroup' as const, is_forum: true };
const dm = { id: OWNER.id, type: 'private' as const };
/** A real 1×1 PNG. */
const PNG_B64 = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';
const PNG = Buffer.from(PNG_B64, 'base64');

/** The model's answer: send_file calls for the markers in the user's text, then an echo. */
function script(req: ChatRequest) {
  const text = lastUserText(req);
  const hasToolResult = req.messages.some((m) => m.role === 'tool');
  if (hasToolResult) return { text: `echo: ${text}` };
  const tag = /\[(\w+)\]/.exec(text)?.[1] ?? 'x';
  const calls: Array<{ name: string; args: unknown }> = [];
  if (text.includes('FILE')) calls.push({ name: 'send_file', args: { name: `report-${tag}.csv`, content: `a,b\n${tag},2\n` } });
  if (text.includes('IMAGE')) calls.push({ name: 'send_file', args: { name: `dot-${tag}.png`, content: PNG_B64, encoding: 'base64' } });
  return calls.length > 0 ? { toolCalls: calls } : { text: `echo: ${text}` };
}

describe('Telegram: files the agent sends (send_file → sendDocument/sendPhoto)', () => {
  let redis: Service;
  let llm: StandIn;
  let tg: TelegramStandIn;
  let hub: Hub;
  const home = mkdtempSync(join(tmpdir(), 'bulwark-tgfiles-'));
  /** Calls to a chat, in the order the stand-in received them. */
  const toChat = (chatId: number) => tg.calls.filter((c) => ['sendMessage', 'sendDocument', 'sendPhoto'].includes(c.method) && Number(c.body.chat_id) === chatId);
  const uploadsNamed = (method: string, filename: string) => tg.sent(method).filter((c) => c.uploads?.some((u) => u.filename === filename));
  const textsWith = (s: string) => tg.sent().filter((c) => String(c.body.text).includes(s));

  before(async () => {
    redis = await startRedis();
    llm = await startLlmStandIn(script);
    tg = await startTelegramStandIn({ token: TOKEN });
    // The hub's default toolset, where send_file is registered.
    ({ hub } = await startTelegramHub({ home, redisUrl: redis.url, llmUrl: llm.baseUrl, tgUrl: tg.url, token: TOKEN, settings: [`owners = [${OWNER.id}]`, `groups = [${GROUP.id}]`] }));
  });

  after(async () => {
    await hub?.close();
    await tg?.close();
    await llm?.close();
    await redis?.stop();
    rmSync(home, { recursive: true, force: true });
  });

  it('a DM: the text reply, then the file as a document with its exact bytes and name', async () => {
    const { messageId } = tg.message({ chat: dm, from: OWNER, text: 'FILE please [dm]' });
    const [doc] = await waitFor(() => uploadsNamed('sendDocument', 'report-dm.csv'), 'the uploaded document');
    assert.equal(Number(doc!.body.chat_id), OWNER.id);
    assert.equal(doc!.body.message_thread_id, undefined);
    assert.deepEqual(doc!.uploads!.map((u) => [u.field, u.filename, u.bytes.toString('utf8')]), [['document', 'report-dm.csv', 'a,b\ndm,2\n']]);
    assert.equal(doc!.body.reply_parameters, undefined, 'the text already quotes the question');
    const [text] = textsWith('echo: FILE please [dm]');
    assert.equal(text!.body.reply_parameters.message_id, messageId);
    assert.ok(toChat(OWNER.id).indexOf(text!) < toChat(OWNER.id).indexOf(doc!), 'the file follows the text');
    // The model was told the file goes out with the reply.
    const toolResult = llm.requests.flatMap((r) => r.messages).find((m) => m.role === 'tool' && String(JSON.stringify(m.content)).includes('report-dm.csv'));
    assert.ok(toolResult, 'the tool result names the file');
  });

  it('an image goes as a photo, and a forum topic gets text and file in that topic', async () => {
    tg.message({ chat: GROUP, from: MEMBER, text: '@bulwark_test_bot IMAGE and FILE [topic]', threadId: 77, entities: [{ type: 'mention', offset: 0, length: 17 }] });
    const [photo] = await waitFor(() => uploadsNamed('sendPhoto', 'dot-topic.png'), 'the photo');
    const [doc] = await waitFor(() => uploadsNamed('sendDocument', 'report-topic.csv'), 'the document');
    const [text] = textsWith('echo: IMAGE and FILE [topic]');
    for (const c of [photo!, doc!, text!]) {
      assert.equal(Number(c.body.chat_id), GROUP.id);
      assert.equal(c.body.message_thread_id, 77, `${c.method} goes to the topic`);
    }
    assert.equal(photo!.uploads![0]!.field, 'photo');
    assert.ok(photo!.uploads![0]!.bytes.equals(PNG), 'the exact PNG bytes');
    assert.equal(doc!.uploads![0]!.bytes.toString('utf8'), 'a,b\ntopic,2\n');
  });

  it('an image Telegram refuses as a photo is sent as a document instead', async () => {
    tg.fail('sendPhoto', { status: 400, description: 'Bad Request: PHOTO_INVALID_DIMENSIONS' });
    tg.message({ chat: dm, from: OWNER, text: 'IMAGE [wide]' });
    const [doc] = await waitFor(() => uploadsNamed('sendDocument', 'dot-wide.png'), 'the image as a document');
    assert.ok(doc!.uploads![0]!.bytes.equals(PNG));
    assert.equal(Number(doc!.body.chat_id), OWNER.id);
    assert.equal(uploadsNamed('sendPhoto', 'dot-wide.png').length, 1, 'one refused photo');
  });

  it('a job retried after a failed upload sends neither the text nor the earlier file again', async () => {
    // Text, then the photo (ok), then the document (500 once → the whole job is retried with backoff).
    tg.fail('sendDocument', { status: 500, description: 'Internal Server Error' });
    tg.message({ chat: dm, from: OWNER, text: 'IMAGE and FILE [retry]' });
    await waitFor(() => uploadsNamed('sendDocument', 'report-retry.csv').length === 2, 'the failed and the retried upload');
    await waitFor(() => tg.sent('sendDocument').some((c) => c.result && c.uploads?.[0]?.filename === 'report-retry.csv'), 'the delivered document');
    // A marker later on: anything the retry would have duplicated has arrived by then.
    tg.message({ chat: dm, from: OWNER, text: 'marker [r]' });
    await waitFor(() => textsWith('echo: marker [r]').length === 1, 'the marker reply');
    assert.equal(textsWith('echo: IMAGE and FILE [retry]').length, 1, 'the text once');
    assert.equal(uploadsNamed('sendPhoto', 'dot-retry.png').length, 1, 'the photo once');
    const docs = uploadsNamed('sendDocument', 'report-retry.csv') as [Call, Call];
    assert.equal(docs.length, 2, 'one refused upload, one delivered');
    assert.equal(docs[0].result, undefined);
    assert.ok(docs[1].result?.message_id);
  });

  it('429 with retry_after on an upload: delivered later, once', async () => {
    tg.fail('sendDocument', { status: 429, description: 'Too Many Requests: retry after 1', retryAfter: 1 });
    tg.message({ chat: dm, from: OWNER, text: 'FILE [limited]' });
    await waitFor(() => uploadsNamed('sendDocument', 'report-limited.csv').length === 2, 'the retried upload');
    const [first, second] = uploadsNamed('sendDocument', 'report-limited.csv') as [Call, Call];
    assert.ok(second.at - first.at >= 1000, 'the retry honours retry_after');
    assert.equal(second.uploads![0]!.bytes.toString('utf8'), 'a,b\nlimited,2\n');
    tg.message({ chat: dm, from: OWNER, text: 'marker [l]' });
    await waitFor(() => textsWith('echo: marker [l]').length === 1, 'the marker reply');
    assert.equal(uploadsNamed('sendDocument', 'report-limited.csv').length, 2, 'one rejected call, one delivery');
    assert.equal(textsWith('echo: FILE [limited]').length, 1, 'the text was not re-sent');
  });

  it('an upload whose answer is lost is not repeated', async () => {
    tg.fail('sendDocument', { drop: 'after' });
    tg.message({ chat: dm, from: OWNER, text: 'FILE [lost]' });
    await waitFor(() => uploadsNamed('sendDocument', 'report-lost.csv').length === 1, 'the upload');
    tg.message({ chat: dm, from: OWNER, text: 'FILE [next]' });
    await waitFor(() => uploadsNamed('sendDocument', 'report-next.csv').length === 1, 'the next upload');
    assert.equal(uploadsNamed('sendDocument', 'report-lost.csv').length, 1);
  });
});
