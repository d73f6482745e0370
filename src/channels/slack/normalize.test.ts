import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { normalizeCommand, normalizeEvent, type SlackIncoming } from './normalize.js';
import { mentionsUser, slackToText } from './text.js';
import { parseChatId } from './types.js';

const bot = { userId: 'UBOT1', botId: 'BBOT1', teamId: 'T1' };
const ok = (raw: unknown): SlackIncoming => {
  const n = normalizeEvent(raw, bot);
  assert.ok(n.ok, `expected a message, got: ${n.ok ? '' : n.reason}`);
  return n.msg;
};
const dropped = (raw: unknown): string => {
  const n = normalizeEvent(raw, bot);
  assert.ok(!n.ok, 'expected the event to be dropped');
  return n.reason;
};

describe('Slack events → normalized messages', () => {
  it('a DM is one conversation; a thread inside a DM is its own', () => {
    const top = ok({ type: 'message', channel: 'D1', channel_type: 'im', user: 'U1', text: 'hi', ts: '1700000000.000100' });
    assert.equal(top.chatType, 'dm');
    assert.equal(top.chatId, 'D1');
    assert.equal(top.messageId, 'D1:1700000000.000100');
    const inThread = ok({ type: 'message', channel: 'D1', channel_type: 'im', user: 'U1', text: 'more', ts: '1700000005.000100', thread_ts: '1700000000.000100' });
    assert.equal(inThread.chatId, 'D1/1700000000.000100');
  });

  it('a file_share carries its files (a file Slack hides, without URLs, too); without files none are set', () => {
    const m = ok({ type: 'message', subtype: 'file_share', channel: 'D1', channel_type: 'im', user: 'U1', text: '', ts: '1700000000.000200',
      files: [{ id: 'F1', name: 'a.png', mimetype: 'image/png', size: 10, url_private_download: 'https://files.slack.com/files-pri/T1-F1/download/a.png', extra: 1 }, { id: 'F2', mode: 'hidden_by_limit' }] });
    assert.equal(m.files?.length, 2);
    assert.equal(m.files?.[0]?.url_private_download, 'https://files.slack.com/files-pri/T1-F1/download/a.png');
    assert.equal(ok({ type: 'message', channel: 'D1', channel_type: 'im', user: 'U1', text: 'hi', ts: '1700000000.000300' }).files, undefined);
  });

  it('a top-level channel message starts a thread on itself; replies in it share the conversation', () => {
    const top = ok({ type: 'message', channel: 'C1', channel_type: 'channel', user: 'U1', text: '<@UBOT1> help', ts: '1700000000.000100' });
    assert.equal(top.chatType, 'group');
    assert.equal(top.chatId, 'C1/1700000000.000100');
    assert.deepEqual(parseChatId(top.chatId), { kind: 'channel', channel: 'C1', threadTs: '1700000000.000100' });
    assert.equal(top.mentioned, true);
    assert.equal(top.text, 'help');
    const reply = ok({ type: 'message', channel: 'C1', channel_type: 'channel', user: 'U2', text: 'and?', ts: '1700000009.000100', thread_ts: '1700000000.000100', parent_user_id: 'U1' });
    assert.equal(reply.chatId, top.chatId);
    assert.equal(reply.mentioned, false);
    assert.equal(reply.threadTs, '1700000000.000100');
  });

  it('app_mention and the message event of the same message get the same id (one job)', () => {
    const m = ok({ type: 'message', channel: 'C1', channel_type: 'channel', user: 'U1', text: '<@UBOT1> x', ts: '1700000000.000200' });
    const a = ok({ type: 'app_mention', channel: 'C1', user: 'U1', text: '<@UBOT1> x', ts: '1700000000.000200' });
    assert.equal(a.messageId, m.messageId);
    assert.equal(a.chatId, m.chatId);
    assert.equal(a.chatType, 'group');
  });

  it('broadcasts are not mentions; another user is not the bot', () => {
    for (const text of ['<!channel> lunch', '<!here> hi', '<!everyone> hi', '<@UOTHER> hi', 'UBOT1 without brackets']) {
      assert.equal(ok({ type: 'message', channel: 'C1', channel_type: 'channel', user: 'U1', text, ts: '1700000000.000300' }).mentioned, false, text);
    }
    assert.equal(mentionsUser('hey <@UBOT1|bulwark>', 'UBOT1'), true);
  });

  it('marks the bot itself and other bots; drops edits, deletes and joins', () => {
    assert.equal(ok({ type: 'message', channel: 'C1', user: 'UBOT1', text: 'mine', ts: '1700000000.000400' }).fromSelf, true);
    assert.equal(ok({ type: 'message', channel: 'C1', bot_id: 'BBOT1', subtype: 'bot_message', text: 'mine', ts: '1700000000.000400' }).fromSelf, true);
    const other = ok({ type: 'message', channel: 'C1', bot_id: 'BOTHER', subtype: 'bot_message', text: '<@UBOT1> hi', ts: '1700000000.000400' });
    assert.equal(other.senderIsBot, true);
    assert.equal(other.fromSelf, false);
    assert.match(dropped({ type: 'message', subtype: 'message_changed', channel: 'C1', ts: '1700000000.000500', message: {} }), /subtype message_changed/);
    assert.match(dropped({ type: 'message', subtype: 'message_deleted', channel: 'C1', ts: '1700000000.000500' }), /subtype message_deleted/);
    assert.match(dropped({ type: 'message', subtype: 'channel_join', channel: 'C1', user: 'U1', ts: '1700000000.000500' }), /channel_join/);
  });

  it('drops malformed payloads with a reason instead of throwing', () => {
    assert.match(dropped(null), /malformed/);
    assert.match(dropped({ type: 'message', channel: 'C1', user: 'U1', text: 'x' }), /malformed message event: ts/);
    assert.match(dropped({ type: 'message', channel: '../../etc', user: 'U1', text: 'x', ts: '1.1' }), /channel/);
    assert.match(dropped({ type: 'app_mention', channel: 'C1', user: 'U1', text: 5, ts: '1.1' }), /text/);
  });

  it('turns Slack markup into readable text', () => {
    assert.equal(slackToText('<@UBOT1> see <https://example.com|the docs> in <#C9|general> &lt;b&gt; &amp; <!here>', 'UBOT1'), 'see the docs (https://example.com) in #general <b> & @here');
    assert.equal(slackToText('<mailto:a@b.c|a@b.c> <https://x.y>', 'UBOT1'), 'a@b.c (mailto:a@b.c) https://x.y');
  });
});

describe('the /bulwark slash command', () => {
  it('in a DM continues the DM conversation; in a channel it is a private conversation answered ephemerally', () => {
    const dm = normalizeCommand({ command: '/bulwark', text: 'status?', user_id: 'U1', channel_id: 'D1', trigger_id: '123.456.abc' });
    assert.ok(dm.ok);
    assert.equal(dm.msg.chatId, 'D1');
    assert.equal(dm.msg.isCommand, true);
    assert.equal(dm.msg.messageId, 'cmd:123.456.abc');
    const ch = normalizeCommand({ command: '/bulwark', text: 'status?', user_id: 'U1', channel_id: 'C1', trigger_id: '123.456.abd' });
    assert.ok(ch.ok);
    assert.equal(ch.msg.chatType, 'group');
    assert.deepEqual(parseChatId(ch.msg.chatId), { kind: 'ephemeral', channel: 'C1', user: 'U1' });
    assert.ok(!normalizeCommand({ command: '/bulwark', user_id: 'U1' }).ok);
  });

  it('refuses chat ids it did not produce', () => {
    for (const bad of ['', 'c1', 'C1/', 'C1/abc', 'C1/@', 'C1/1.1/2.2', 'C1/../x', 'C1:1.1']) assert.equal(parseChatId(bad), undefined, bad);
  });
});
