import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDb, resolveDbTarget } from '../src/db/client.js';
import type { Hub } from '../src/hub.js';
import { openVaultOn } from '../src/vault/index.js';
import { lastUserText, startLlmStandIn, type StandIn } from './support/llm-standin.js';
import { startRedis, type Service } from './support/services.js';
import { startTelegramStandIn, type Call, type TelegramStandIn, type TgUser } from './support/telegram-standin.js';
import { startTelegramHub } from './support/telegram-hub.js';
import { waitFor } from './support/wait.js';

/*
 * Long answers on Telegram appear while the model writes them: one message, edited as the text
 * grows, then replaced by the final reply (the real grammY against the stand-in, a streaming LLM
 * stand-in that writes slowly, real Redis and the agent worker). The model is tricked into writing a
 * vault secret in the middle of its answer: no draft may show any of it.
 */

const TOKEN = '7000002:AAFakeTokenForDraftTests_abcdefghijklmno';
const OWNER: TgUser = { id: 211, is_bot: false, first_name: 'Olive' };
const SECRET = 'Zq8rT4vN1mK7pL2wX9cB6hJ3dF5gS0aE';

/** About 7,000 characters of paragraphs with the secret written out around character 2,600. */
function longAnswer(): string {
  const para = (i: number) => `Paragraph ${i}: ${'the quick brown fox jumps over the lazy dog '.repeat(4).trim()}.`;
  const paras = Array.from({ length: 40 }, (_, i) => para(i));
  paras.splice(14, 0, `The deploy key is ${SECRET} and you should keep it safe.`);
  return paras.join('\n\n');
}

describe('Telegram shows long answers as a draft while the model writes (streamed, guarded, then replaced)', () => {
  let redis: Service;
  let llm: StandIn;
  let tg: TelegramStandIn;
  let hub: Hub;
  const home = mkdtempSync(join(tmpdir(), 'bulwark-tg-drafts-'));

  before(async () => {
    redis = await startRedis();
    llm = await startLlmStandIn((req) => {
      const text = lastUserText(req);
      // ~100 characters every 40 ms: about 3 s of writing, so several drafts go out.
      if (text.includes('essay')) return { text: longAnswer(), pace: { chars: 100, everyMs: 40 } };
      return { text: `echo: ${text}` };
    });
    tg = await startTelegramStandIn({ token: TOKEN });
    const db = await openDb(resolveDbTarget(undefined, home));
    const { vault } = await openVaultOn(db, home, { create: true, env: {} });
    await vault.add('DEPLOY_KEY', SECRET, { hosts: ['deploy.example.com'], headers: ['Authorization: Bearer {value}'] });
    await db.$disconnect();
    ({ hub } = await startTelegramHub({ home, redisUrl: redis.url, llmUrl: llm.baseUrl, tgUrl: tg.url, token: TOKEN, settings: [`owners = [${OWNER.id}]`] }));
  });

  after(async () => {
    await hub?.close();
    await tg?.close();
    await llm?.close();
    await redis?.stop();
    rmSync(home, { recursive: true, force: true });
  });

  const toOwner = (c: Call) => Number(c.body.chat_id) === OWNER.id;
  const textCalls = () => tg.calls.filter((c) => (c.method === 'sendMessage' || c.method === 'editMessageText') && toOwner(c));

  it('one message is sent, edited as the answer grows, and becomes the first chunk of the final reply', async () => {
    const { messageId } = tg.message({ chat: { id: OWNER.id, type: 'private' }, from: OWNER, text: 'write me an essay' });
    // Final: the second chunk of the reply is the last paragraph.
    await waitFor(() => textCalls().some((c) => c.method === 'sendMessage' && String(c.body.text).includes('Paragraph 39:')), 'the final reply');
    const calls = textCalls();
    const sends = calls.filter((c) => c.method === 'sendMessage');
    const edits = calls.filter((c) => c.method === 'editMessageText');
    // Drafts end with "…"; at least one was shown before the final text, as a reply to the user.
    const drafts = calls.filter((c) => String(c.body.text).endsWith(' …'));
    assert.ok(drafts.length >= 2, `drafts shown: ${drafts.length}`);
    const draftMessage = sends[0]!;
    assert.ok(String(draftMessage.body.text).endsWith(' …'), 'the first message is the draft');
    assert.equal(draftMessage.body.reply_parameters.message_id, messageId);
    const draftId = draftMessage.result.message_id;
    // The draft message is edited, never sent again: the final reply is that message plus one more.
    assert.equal(sends.length, 2, 'two messages in the chat (draft → first chunk, second chunk)');
    assert.ok(edits.every((e) => e.body.message_id === draftId));
    const last = edits.at(-1)!;
    assert.ok(!String(last.body.text).endsWith(' …'), 'the last edit is the final text');
    assert.match(String(last.body.text), /^Paragraph 0:/);
    // No draft, edit or final chunk lets Telegram fetch a link preview.
    for (const c of calls) assert.equal(c.body.link_preview_options?.is_disabled, true, c.method);
    // Drafts only grow (each shows more of the answer than the one before).
    const lengths = drafts.map((d) => String(d.body.text).length);
    assert.deepEqual([...lengths].sort((a, b) => a - b), lengths);
  });

  it('ATTACK: the model writes a vault secret mid-answer → no draft shows any part of it; the final text is redacted', async () => {
    const all = textCalls().map((c) => String(c.body.text)).join('\n');
    for (let i = 0; i + 8 <= SECRET.length; i++) assert.ok(!all.includes(SECRET.slice(i, i + 8)), `a piece of the secret was shown: ${SECRET.slice(i, i + 8)}`);
    assert.match(all, /The deploy key is \[REDACTED:DEPLOY_KEY\]/);
  });

  it('short answers are sent once, without a draft', async () => {
    tg.message({ chat: { id: OWNER.id, type: 'private' }, from: OWNER, text: 'hi there' });
    await waitFor(() => textCalls().some((c) => String(c.body.text) === 'echo: hi there'), 'the short reply');
    assert.equal(textCalls().filter((c) => String(c.body.text).includes('hi there')).length, 1);
  });
});
