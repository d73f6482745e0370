import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DiscordAPIError, RateLimitError } from 'discord.js';
import { PermanentSendError, RetryAfter, SendOutcomeUnknown } from '../delivery.js';
import { cleanText, normalizeCommand, normalizeMessage } from './normalize.js';
import { classifySendError } from './send.js';

const BOT = '1100000000000000001';
const ROLE = '1100000000000000002';
const GUILD = '1100000000000000003';
const CHANNEL = '1100000000000000004';
const THREAD = '1100000000000000005';
const ALICE = '1100000000000000006';
const bot = { userId: BOT, roleIn: (g: string) => (g === GUILD ? ROLE : undefined) };

function msg(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id: '1100000000000000100', channelId: CHANNEL, guildId: GUILD, parentId: null, isThread: false, isDm: false, system: false, webhookId: null,
    author: { id: ALICE, name: 'alice', bot: false }, content: 'hello', mentionedUsers: [], mentionedRoles: [], mentionsEveryone: false,
    repliedToUserId: null, attachments: [], ...over,
  };
}

describe('discord normalizeMessage', () => {
  it('a user mention or the managed role mention addresses the bot; @everyone/@here do not', () => {
    const byUser = normalizeMessage(msg({ content: `<@${BOT}> hi`, mentionedUsers: [{ id: BOT, name: 'Bulwark' }] }), bot);
    assert.ok(byUser.ok && byUser.msg.addressing.mentioned);
    assert.equal(byUser.ok && byUser.msg.text, 'hi');
    const byRole = normalizeMessage(msg({ content: `<@&${ROLE}> hi`, mentionedRoles: [ROLE] }), bot);
    assert.ok(byRole.ok && byRole.msg.addressing.mentioned);
    const otherRole = normalizeMessage(msg({ content: '<@&1100000000000000999> hi', mentionedRoles: ['1100000000000000999'] }), bot);
    assert.ok(otherRole.ok && !otherRole.msg.addressing.mentioned, 'another role is not the bot');
    const everyone = normalizeMessage(msg({ content: '@everyone hi', mentionsEveryone: true }), bot);
    assert.ok(everyone.ok && !everyone.msg.addressing.mentioned && !everyone.msg.addressing.replyToBot);
  });

  it('a reply to the bot counts; bots, webhooks and the bot itself are marked; system messages are dropped', () => {
    const reply = normalizeMessage(msg({ repliedToUserId: BOT }), bot);
    assert.ok(reply.ok && reply.msg.addressing.replyToBot);
    const webhook = normalizeMessage(msg({ webhookId: '1100000000000000777' }), bot);
    assert.ok(webhook.ok && webhook.msg.addressing.senderIsBot, 'a webhook post is not a person');
    const self = normalizeMessage(msg({ author: { id: BOT, name: 'Bulwark', bot: true } }), bot);
    assert.ok(self.ok && self.msg.addressing.fromSelf);
    assert.deepEqual(normalizeMessage(msg({ system: true }), bot), { ok: false, reason: 'system message' });
  });

  it('a thread is its own chat, enabled through its parent channel; a DM has no group', () => {
    const t = normalizeMessage(msg({ channelId: THREAD, isThread: true, parentId: CHANNEL }), bot);
    assert.ok(t.ok);
    assert.equal(t.msg.chatId, THREAD);
    assert.equal(t.msg.groupId, CHANNEL);
    const dm = normalizeMessage(msg({ guildId: null, isDm: true }), bot);
    assert.ok(dm.ok && dm.msg.chatType === 'dm' && dm.msg.groupId === undefined);
  });

  it('drops malformed records without throwing', () => {
    const bad = normalizeMessage(msg({ id: 'not-a-snowflake' }), bot);
    assert.equal(bad.ok, false);
    assert.match(!bad.ok ? bad.reason : '', /^malformed message: id/);
    assert.equal(normalizeMessage(null, bot).ok, false);
    assert.equal(normalizeMessage(msg({ content: 'x'.repeat(100_001) }), bot).ok, false);
  });

  it('cleanText turns other mentions into names so the model never echoes a pingable id', () => {
    assert.equal(cleanText({ content: `<@!${BOT}>  ask <@${ALICE}> and <@1100000000000000999>`, mentionedUsers: [{ id: ALICE, name: 'alice' }] }, { userId: BOT }), 'ask @alice and <@1100000000000000999>');
  });
});

describe('discord normalizeCommand', () => {
  const cmd = (over: Record<string, unknown> = {}) => ({
    id: '1100000000000000200', applicationId: BOT, token: 'tok', commandName: 'bulwark', subcommand: 'ask', text: 'why?',
    channelId: CHANNEL, guildId: GUILD, parentId: null, user: { id: ALICE, name: 'alice', bot: false }, ...over,
  });
  it('is a command addressed to the bot, with an interaction-prefixed id', () => {
    const n = normalizeCommand(cmd());
    assert.ok(n.ok);
    assert.equal(n.msg.messageId, 'i1100000000000000200');
    assert.ok(n.msg.addressing.isCommand);
    assert.equal(n.msg.text, 'why?');
  });
  it('rejects other commands and empty text', () => {
    assert.equal(normalizeCommand(cmd({ commandName: 'other' })).ok, false);
    assert.equal(normalizeCommand(cmd({ text: '   ' })).ok, false);
  });
});

describe('discord classifySendError', () => {
  const apiError = (status: number, code: number) => new DiscordAPIError({ code, message: 'x' }, code, status, 'POST', 'http://x/api/v10/channels/1/messages', {});
  it('maps Discord answers to the delivery outcomes', () => {
    const rl = new RateLimitError({ timeToReset: 0, limit: 5, method: 'POST', hash: 'h', url: 'u', route: '/channels/:id/messages', majorParameter: '1', global: false, retryAfter: 1500, sublimitTimeout: 0, scope: 'user' });
    const r = classifySendError(rl);
    assert.ok(r instanceof RetryAfter && r.ms === 1500);
    assert.ok(classifySendError(apiError(403, 50013)) instanceof PermanentSendError);
    assert.ok(classifySendError(apiError(404, 10003)) instanceof PermanentSendError);
    const unauthorized = classifySendError(apiError(401, 0));
    assert.ok(!(unauthorized instanceof PermanentSendError) && !(unauthorized instanceof SendOutcomeUnknown), '401 is retried');
  });
  it('a refused connection is retried; a timeout is "may have arrived", never repeated', () => {
    const refused = Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNREFUSED' } });
    assert.ok(!(classifySendError(refused) instanceof SendOutcomeUnknown));
    const timeout = Object.assign(new Error('aborted'), { name: 'AbortError' });
    assert.ok(classifySendError(timeout) instanceof SendOutcomeUnknown);
  });
});
