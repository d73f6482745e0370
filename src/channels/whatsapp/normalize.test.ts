import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { normalizeMessage, stripOwnMentions } from './normalize.js';

const OWN = new Set(['15550001111@c.us', '98765432109876@lid']);

function msg(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id: 'false_15551234567@c.us_3EB0AA', fromMe: false, from: '15551234567@c.us', body: 'hi', type: 'chat',
    isStatus: false, broadcast: false, mentionedIds: [], hasMedia: false, ...over,
  };
}

describe('whatsapp normalizeMessage', () => {
  it('a DM: the sender is the chat', () => {
    const n = normalizeMessage(msg(), OWN);
    assert.ok(n.ok);
    assert.equal(n.msg.chatType, 'dm');
    assert.equal(n.msg.senderId, '15551234567@c.us');
    assert.equal(n.msg.chatId, '15551234567@c.us');
  });

  it('in a group the author is the sender; a mention by phone id or by LID addresses the bot', () => {
    const g = { from: '120363012345678901@g.us', author: '15557654321@c.us' };
    const none = normalizeMessage(msg({ ...g, body: 'chatting' }), OWN);
    assert.ok(none.ok && !none.msg.addressing.mentioned && none.msg.senderId === '15557654321@c.us' && none.msg.groupId === g.from);
    const byPhone = normalizeMessage(msg({ ...g, body: '@15550001111 hello', mentionedIds: ['15550001111@c.us'] }), OWN);
    assert.ok(byPhone.ok && byPhone.msg.addressing.mentioned);
    assert.equal(byPhone.ok && byPhone.msg.text, 'hello');
    const byLid = normalizeMessage(msg({ ...g, body: '@98765432109876 hello', mentionedIds: ['98765432109876@lid'] }), OWN);
    assert.ok(byLid.ok && byLid.msg.addressing.mentioned);
    assert.equal(byLid.ok && byLid.msg.text, 'hello');
    const other = normalizeMessage(msg({ ...g, body: '@15559999999 hello', mentionedIds: ['15559999999@c.us'] }), OWN);
    assert.ok(other.ok && !other.msg.addressing.mentioned);
    const reply = normalizeMessage(msg({ ...g, quotedParticipant: '15550001111@c.us' }), OWN);
    assert.ok(reply.ok && reply.msg.addressing.replyToBot);
  });

  it('drops status updates, channel posts, non-text types and authorless group messages; marks its own', () => {
    assert.equal(normalizeMessage(msg({ from: 'status@broadcast', isStatus: true }), OWN).ok, false);
    assert.equal(normalizeMessage(msg({ from: '120363000000000000@newsletter' }), OWN).ok, false);
    assert.equal(normalizeMessage(msg({ type: 'e2e_notification' }), OWN).ok, false);
    assert.equal(normalizeMessage(msg({ from: '120363012345678901@g.us' }), OWN).ok, false);
    const own = normalizeMessage(msg({ fromMe: true }), OWN);
    assert.ok(own.ok && own.msg.addressing.fromSelf);
  });

  it('rejects malformed ids without throwing', () => {
    const bad = normalizeMessage(msg({ from: 'javascript:alert(1)' }), OWN);
    assert.equal(bad.ok, false);
    assert.match(!bad.ok ? bad.reason : '', /^malformed message: from/);
    assert.equal(normalizeMessage(undefined, OWN).ok, false);
  });

  it('a media message keeps its caption and carries the media for the adapter; without a caption it is still taken', () => {
    const n = normalizeMessage(msg({ type: 'document', body: 'look at this', hasMedia: true, mediaName: 'report.pdf', mediaSize: 1234 }), OWN);
    assert.ok(n.ok);
    assert.equal(n.msg.text, 'look at this');
    assert.deepEqual(n.msg.media, { type: 'document', name: 'report.pdf', size: 1234 });
    const bare = normalizeMessage(msg({ type: 'image', body: '', hasMedia: true }), OWN);
    assert.ok(bare.ok && bare.msg.text === '' && bare.msg.media?.type === 'image');
    assert.equal(normalizeMessage(msg({ body: '' }), OWN).ok, false, 'an empty text message is dropped');
  });

  it('stripOwnMentions removes only the bot', () => {
    assert.equal(stripOwnMentions('@15550001111  ask @15551234567', OWN), 'ask @15551234567');
  });
});
