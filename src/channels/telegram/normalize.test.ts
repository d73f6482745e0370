import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { normalizeUpdate, parseChatId, updateSchema } from './normalize.js';

const bot = { id: 42, username: 'MyBot' };
const from = { id: 7, is_bot: false, first_name: 'Ann', last_name: 'Lee' };
const msg = (extra: Record<string, unknown>) => updateSchema.parse({ update_id: 1, message: { message_id: 10, date: 1, chat: { id: 7, type: 'private' }, from, text: 'hi', ...extra } });

describe('normalizeUpdate (Telegram)', () => {
  it('a DM: stable ids from chat id + message_id', () => {
    const n = normalizeUpdate(msg({}), bot, 5);
    assert.equal(n.kind, 'message');
    if (n.kind !== 'message') return;
    assert.deepEqual(n.chat, { accountId: '42', chatId: '7', messageId: '7/10', chatType: 'dm', groupId: '7', sender: { id: '7', name: 'Ann Lee', isBot: false }, fromSelf: false, mentioned: false, replyToBot: false, isCommand: false, text: 'hi', receivedAt: 5 });
  });

  it('a mention of our @handle (any case) is a mention and is stripped; another bot\'s is not', () => {
    const group = { id: -1001, type: 'supergroup' };
    const ours = normalizeUpdate(msg({ chat: group, text: 'hey @mybot help', entities: [{ type: 'mention', offset: 4, length: 6 }] }), bot);
    assert.ok(ours.kind === 'message' && ours.chat.mentioned && ours.chat.text === 'hey  help');
    const other = normalizeUpdate(msg({ chat: group, text: 'hey @otherbot', entities: [{ type: 'mention', offset: 4, length: 9 }] }), bot);
    assert.ok(other.kind === 'message' && !other.chat.mentioned);
    const plain = normalizeUpdate(msg({ chat: group, text: 'typed @mybot without an entity' }), bot);
    assert.ok(plain.kind === 'message' && !plain.chat.mentioned, 'only entities count (Telegram marks real mentions)');
  });

  it('commands: ours with or without @handle; one for another bot is not ours', () => {
    const c = (text: string, length: number) => normalizeUpdate(msg({ text, entities: [{ type: 'bot_command', offset: 0, length }] }), bot);
    const a = c('/help', 5);
    assert.ok(a.kind === 'message' && a.command === 'help' && a.chat.isCommand);
    const b = c('/new@MyBot', 10);
    assert.ok(b.kind === 'message' && b.command === 'new' && b.chat.text === '/new');
    const x = c('/help@OtherBot', 14);
    assert.ok(x.kind === 'message' && x.command === undefined && !x.chat.isCommand);
  });

  it('forum topics are part of the chat id; replies to the bot are recognised', () => {
    const n = normalizeUpdate(msg({ chat: { id: -1002, type: 'supergroup', is_forum: true }, message_thread_id: 77, is_topic_message: true, reply_to_message: { message_id: 3, from: { id: 42, is_bot: true, first_name: 'B' } } }), bot);
    assert.ok(n.kind === 'message');
    if (n.kind !== 'message') return;
    assert.equal(n.chat.chatId, '-1002/77');
    assert.equal(n.chat.groupId, '-1002');
    assert.equal(n.chat.replyToBot, true);
    assert.deepEqual(parseChatId(n.chat.chatId), { chat_id: -1002, message_thread_id: 77 });
  });

  it('skips edits, channel posts, anonymous senders and text-less messages', () => {
    assert.equal(normalizeUpdate(updateSchema.parse({ update_id: 2, edited_message: { message_id: 1 } }), bot).kind, 'skip');
    assert.equal(normalizeUpdate(msg({ chat: { id: -5, type: 'channel' } }), bot).kind, 'skip');
    assert.equal(normalizeUpdate(msg({ from: undefined }), bot).kind, 'skip');
    assert.equal(normalizeUpdate(msg({ text: undefined }), bot).kind, 'skip');
    assert.ok(normalizeUpdate(msg({ from: { id: 42, is_bot: true, first_name: 'me' } }), bot).kind === 'message');
  });

  it('rejects malformed updates at the schema', () => {
    for (const bad of [{}, { update_id: -1 }, { update_id: 1, message: { message_id: 'x' } }, { update_id: 1, message: { message_id: 1, date: 1, chat: { id: 1, type: 'martian' } } }]) {
      assert.equal(updateSchema.safeParse(bad).success, false, JSON.stringify(bad));
    }
  });
});
