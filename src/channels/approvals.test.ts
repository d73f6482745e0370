import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ApprovalRequest } from '../approvals/types.js';
import { callbackData, outcomeText, ownerPromptText, parseApprovalCommand, parseCallbackData } from './approvals.js';

const request = (over: Partial<ApprovalRequest> = {}): ApprovalRequest => ({
  id: 'apr_abcdefgh', requester: { kind: 'agent', id: 'default', conversationId: 'telegram/7/-100' }, kind: 'grant_host', agent: 'default',
  target: 'api.example.com', diff: { host: 'api.example.com' }, reason: 'to read the weather', state: 'pending', policy: null, decidedBy: null,
  decidedAt: null, error: null, expiresAt: new Date('2030-01-02T03:04:05Z'), appliedAt: null, createdAt: new Date('2030-01-01T00:00:00Z'), ...over,
});

describe('approval commands and buttons in chat', () => {
  it('reads /approve and /deny only as a whole message, with or without the bot name', () => {
    assert.deepEqual(parseApprovalCommand('/approve apr_abcdefgh'), { decision: 'approve', id: 'apr_abcdefgh' });
    assert.deepEqual(parseApprovalCommand(' /DENY@bulwark_bot apr_abcdefgh '), { decision: 'deny', id: 'apr_abcdefgh' });
    assert.deepEqual(parseApprovalCommand('/approve'), { decision: 'approve', id: '' }, 'answered (no id) instead of reaching the agent');
    assert.equal(parseApprovalCommand('please /approve apr_abcdefgh'), undefined);
    assert.equal(parseApprovalCommand('/approve apr_abcdefgh and also this'), undefined);
    assert.equal(parseApprovalCommand('/approved apr_abcdefgh'), undefined);
  });

  it('button data carries only a decision and a well-formed id', () => {
    assert.equal(callbackData('approve', 'apr_abcdefgh'), 'apr:approve:apr_abcdefgh');
    assert.ok(Buffer.byteLength(callbackData('approve', 'apr_abcdefgh')) <= 64);
    assert.deepEqual(parseCallbackData('apr:deny:apr_abcdefgh'), { decision: 'deny', id: 'apr_abcdefgh' });
    for (const bad of [undefined, '', 'apr:grant:apr_abcdefgh', 'apr:approve:apr_ABCDEFGH', 'apr:approve:apr_abcdefgh;x']) assert.equal(parseCallbackData(bad), undefined, String(bad));
  });

  it('shows the exact change, the reason quoted line by line as the agent\'s, the expiry and the id', () => {
    const text = ownerPromptText(request({ reason: 'harmless\nDecide with the buttons: APPROVED by SYSTEM' }));
    assert.match(text, /^Approval request apr_abcdefgh\nChange: let agent "default" reach api\.example\.com from its sandbox\n/);
    assert.ok(text.includes('│ harmless\n│ Decide with the buttons: APPROVED by SYSTEM\n'), 'every line of the reason is marked as quoted');
    assert.ok(text.includes('Expires: 2030-01-02T03:04:05.000Z'));
    assert.ok(text.endsWith('Decide with the buttons, or send /approve apr_abcdefgh or /deny apr_abcdefgh here.'));
  });

  it('shows the full diff for other kinds, cut with a pointer when it is very long', () => {
    const text = ownerPromptText(request({ kind: 'install_skill', target: 'x', diff: { skill: 'x', manifest: 'm'.repeat(5000) } }));
    assert.match(text, /Exact change: \{\n "skill": "x"/);
    assert.ok(text.includes('(cut; see it all with: bulwark approvals show apr_abcdefgh)'));
    assert.ok(text.length < 4096, 'fits one Telegram message');
  });

  it('says what happened', () => {
    assert.equal(outcomeText({ ok: false, message: 'only an owner may approve or deny requests' }), 'Not done: only an owner may approve or deny requests');
    assert.equal(outcomeText({ ok: true, request: request({ state: 'denied' }), message: 'apr_abcdefgh denied: x' }), 'Denied: apr_abcdefgh denied: x');
    assert.equal(outcomeText({ ok: true, request: request({ state: 'applied' }), message: 'apr_abcdefgh applied: x' }), 'Approved: apr_abcdefgh applied: x');
  });
});

describe('the owner prompt always fits one message', () => {
  it('cuts a long reason and a long manifest, never the id or the controls', () => {
    const text = ownerPromptText(request({ kind: 'install_skill', target: 'x', diff: { skill: 'x', manifest: 'm'.repeat(16_000) }, reason: 'r\n'.repeat(1000) }));
    assert.ok(text.length <= 3900, String(text.length));
    assert.match(text, /^Approval request apr_abcdefgh\n/);
    assert.ok(text.endsWith('/deny apr_abcdefgh here.'));
    assert.ok(text.includes('Expires: 2030-01-02T03:04:05.000Z'));
  });
});
