import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { AuditLog, type DurableAuditSink } from '../audit/log.js';
import { queryAudit } from '../audit/query.js';
import { tempDb, type TempDb } from '../audit/test-support.js';
import { verifyAudit } from '../audit/verify.js';
import type { Db } from '../db/client.js';
import { memorySecretSource } from '../vault/source.js';
import { ApprovalGateway } from './gateway.js';
import { globMatch, parseRules } from './rules.js';
import { secretHostCheck } from './secret-check.js';
import { ApprovalStore } from './store.js';
import { createRequestCapabilityTool } from './tool.js';
import type { ApprovalRequest, Decider } from './types.js';

const OWNER_API: Decider = { channel: 'api', senderId: 'owner', isOwner: true };
const RULES = `
[[rule]]
kind = "grant_host"
target = "*.internal.example"
action = "deny"
note = "never the internal network"

[[rule]]
kind = "grant_host"
target = "api.github.com"
action = "allow"

[[rule]]
kind = "create_routine"
target = "daily-*"
action = "allow"

[[rule]]
kind = "grant_secret"
target = "*"
action = "allow"
`;

describe('approval gateway', () => {
  let t: TempDb;
  let db: Db;
  let audit: AuditLog;
  let store: ApprovalStore;
  let gw: ApprovalGateway;
  const told: Array<{ id: string; state: string; text: string }> = [];
  const agent = (conversationId = 'c_agentconv1') => ({ kind: 'agent' as const, id: 'default', conversationId });

  before(async () => {
    t = tempDb();
    db = await t.open();
    audit = new AuditLog(db, { home: t.home });
    store = new ApprovalStore(db);
    const vault = memorySecretSource({ GITHUB_TOKEN: { value: 'ghs-not-a-real-value-123456', policy: { hosts: ['api.github.com'], headers: ['Authorization: Bearer {value}'], query: [], body: false, methods: ['GET'] } } });
    gw = new ApprovalGateway({
      store, audit: audit.durable, rules: () => parseRules(RULES), checkSecretHost: secretHostCheck(vault), expiryMs: 3_600_000,
      notify: async (req, text) => { told.push({ id: req.id, state: req.state, text }); },
    });
  });
  after(async () => { await audit?.close(); await db?.$disconnect(); t?.cleanup(); });

  const ask = (diff: Record<string, unknown>, kind: ApprovalRequest['kind'] = 'grant_host', conv?: string) =>
    gw.request({ requester: agent(conv), kind, agent: 'default', diff, reason: 'I need it for the task' });

  it('rules decide before a human: deny, a new host always asks even when allowed, allow, default ask', async () => {
    const denied = await ask({ host: 'db.internal.example' });
    assert.equal(denied.state, 'denied');
    assert.equal(denied.decidedBy, 'policy');
    assert.match(denied.policy!, /rule 1: deny grant_host \*\.internal\.example \(never the internal network\)/);
    assert.ok(told.some((m) => m.id === denied.id && /denied/.test(m.text)), 'the agent is told');

    const host = await ask({ host: 'api.github.com' });
    assert.equal(host.state, 'pending');
    assert.match(host.policy!, /a new network host always asks/);

    const routine = await ask({ name: 'daily-news', trigger: 'cron 0 8 * * * Europe/Berlin', instructions: 'summarize the news' }, 'create_routine');
    assert.equal(routine.state, 'approved', 'allowed by rule; stays approved until the routines module applies it');

    const other = await ask({ host: 'example.org' });
    assert.equal(other.state, 'pending');
    assert.equal(other.policy, null);
  });

  it('built-in: a secret is never granted for a host outside its policy, whatever the rules say', async () => {
    const outside = await ask({ secret: 'GITHUB_TOKEN', host: 'attacker.example' }, 'grant_secret');
    assert.equal(outside.state, 'denied');
    assert.match(outside.policy!, /built-in: attacker\.example is not in the policy of secret GITHUB_TOKEN/);
    const unknown = await ask({ secret: 'NOPE', host: 'api.github.com' }, 'grant_secret');
    assert.equal(unknown.state, 'denied');
    const inside = await ask({ secret: 'GITHUB_TOKEN', host: 'api.github.com' }, 'grant_secret');
    assert.equal(inside.state, 'applied', 'allowed by rule 4 after the built-in check passed');
    assert.deepEqual((await store.grants('default')).secrets, ['GITHUB_TOKEN']);
  });

  it('invalid changes are refused with what is wrong', async () => {
    await assert.rejects(ask({ host: 'https://x.example/path' }), /grant_host: host: .*only a host and optional port/);
    await assert.rejects(ask({ host: 'x.example', extra: 1 }), /grant_host/);
  });

  it('only owners decide; a non-owner is refused and audited', async () => {
    const req = await ask({ host: 'stranger.example' });
    const out = await gw.decide(req.id, 'approve', { channel: 'telegram', senderId: '999', isOwner: false, conversationId: 'c_other' });
    assert.equal(out.ok, false);
    assert.match(out.message, /only an owner/);
    assert.equal((await store.get(req.id))!.state, 'pending');
    assert.deepEqual((await store.grants('default')).http, []);
    await audit.flush();
    const refused = await queryAudit(db, { kind: 'approval.refused' });
    assert.ok(refused.some((e) => e.subject === req.id && e.actor === 'telegram:999' && e.data.isOwner === false));
  });

  it('not from the requesting conversation, unless it is the owner\'s DM', async () => {
    const req = await ask({ host: 'same-conv.example' }, 'grant_host', 'c_group1');
    const fromGroup = await gw.decide(req.id, 'approve', { channel: 'slack', senderId: 'U1', isOwner: true, conversationId: 'c_group1' });
    assert.equal(fromGroup.ok, false);
    assert.match(fromGroup.message, /cannot be decided from the conversation that asked/);
    const dmReq = await ask({ host: 'dm.example' }, 'grant_host', 'c_ownerdm');
    const fromDm = await gw.decide(dmReq.id, 'approve', { channel: 'telegram', senderId: '42', isOwner: true, conversationId: 'c_ownerdm', ownerDm: true });
    assert.equal(fromDm.ok, true);
    assert.equal(fromDm.ok && fromDm.request.state, 'applied');
  });

  it('approve applies the grant once; deny and a second decision change nothing', async () => {
    const a = await ask({ host: 'http://127.0.0.1:9' });
    const out = await gw.decide(a.id, 'approve', OWNER_API);
    assert.equal(out.ok && out.request.state, 'applied');
    assert.ok((await store.grants('default')).http.includes('http://127.0.0.1:9'));
    const again = await gw.decide(a.id, 'deny', OWNER_API);
    assert.equal(again.ok, false);
    assert.match(again.message, /is applied, not pending/);

    const d = await ask({ host: 'denied.example' });
    assert.equal((await gw.decide(d.id, 'deny', OWNER_API)).ok, true);
    assert.equal((await store.get(d.id))!.state, 'denied');
    assert.ok(!(await store.grants('default')).http.includes('denied.example'));
    assert.ok(told.some((m) => m.id === d.id && /denied/.test(m.text)));
  });

  it('a request and an owner\'s decision are answered only once their audit entries are committed', async () => {
    const committed: string[] = [];
    // Each entry reaches the database a while after it is handed over, as on a busy database.
    const slow: DurableAuditSink = async (e) => {
      await new Promise((r) => setTimeout(r, 200));
      const entry = await audit.durable(e);
      if (entry) committed.push(e.kind);
      return entry;
    };
    const g = new ApprovalGateway({ store, audit: slow, rules: () => [], expiryMs: 3_600_000 });
    const req = await g.request({ requester: agent('c_slowaudit1'), kind: 'grant_host', agent: 'default', diff: { host: 'slow-audit.example' }, reason: 'test' });
    assert.deepEqual(committed, ['approval.requested']);
    assert.equal((await g.decide(req.id, 'deny', OWNER_API)).ok, true);
    assert.deepEqual(committed, ['approval.requested', 'approval.decided']);
    assert.equal((await g.decide(req.id, 'deny', OWNER_API)).ok, false);
    assert.deepEqual(committed, ['approval.requested', 'approval.decided', 'approval.refused']);
  });

  it('expired requests can no longer be approved', async () => {
    const req = await ask({ host: 'late.example' });
    assert.ok((await gw.expireDue(new Date(Date.now() + 2 * 3_600_000))) >= 1);
    assert.equal((await store.get(req.id))!.state, 'expired');
    const out = await gw.decide(req.id, 'approve', OWNER_API);
    assert.equal(out.ok, false);
    assert.match(out.message, /is expired/);
    assert.ok(!(await store.grants('default')).http.includes('late.example'));
  });

  it('the agent\'s tool files requests and cannot approve them', async () => {
    const tool = createRequestCapabilityTool(gw, 'default');
    const ctx = { conversationId: 'c_tooltest', signal: new AbortController().signal, logger: undefined as never };
    const out = await tool.execute(tool.inputSchema.parse({ kind: 'grant_host', target: 'tool.example', reason: 'please /approve me' }), ctx) as { id: string; state: string; status: string };
    assert.equal(out.state, 'pending');
    assert.match(out.status, /waiting for the owner's approval/);
    const stored = (await store.get(out.id))!;
    assert.equal(stored.reason, 'please /approve me', 'the agent\'s words are kept verbatim, as its words');
    assert.equal(stored.requester.conversationId, 'c_tooltest');
    assert.deepEqual(await tool.execute(tool.inputSchema.parse({ kind: 'grant_host', target: 'a b', reason: 'x' }), ctx), { error: 'grant_host: host: http grant "a b" is invalid: only a host and optional port are allowed (no path, wildcard or credentials); use "host", "host:port" or "http://host:port"' });
  });

  it('a conversation cannot flood the owner with requests', async () => {
    for (let i = 0; i < 10; i++) await ask({ host: `flood${i}.example` }, 'grant_host', 'c_flood');
    await assert.rejects(ask({ host: 'flood10.example' }, 'grant_host', 'c_flood'), /already has 10 requests waiting/);
  });

  it('every request and decision is in a valid audit chain', async () => {
    await audit.flush();
    const report = await verifyAudit(db, { home: t.home });
    assert.equal(report.ok, true, JSON.stringify(report.problems));
    const kinds = new Set((await queryAudit(db, { kind: 'approval', limit: 1000 })).map((e) => e.kind));
    for (const k of ['approval.requested', 'approval.decided', 'approval.applied', 'approval.refused', 'approval.expired']) assert.ok(kinds.has(k), k);
    const requested = await queryAudit(db, { kind: 'approval.requested', limit: 1000 });
    const decided = await queryAudit(db, { kind: 'approval.decided', limit: 1000 });
    for (const r of await store.list({ limit: 1000 })) {
      assert.ok(requested.some((e) => e.subject === r.id), `request ${r.id} audited`);
      if (r.decidedBy && r.state !== 'expired') assert.ok(decided.some((e) => e.subject === r.id), `decision on ${r.id} audited`);
    }
  });
});

describe('approval rules file', () => {
  it('globs match whole targets, case-insensitively', () => {
    assert.equal(globMatch('*.github.com', 'api.github.com'), true);
    assert.equal(globMatch('*.github.com', 'github.com.evil.example'), false);
    assert.equal(globMatch('api.github.com', 'API.GitHub.com'), true);
  });

  it('errors name the rule, the key and the fix', () => {
    assert.throws(() => parseRules('[[rule]]\nkind = "grant_host"\naction = "maybe"\n'), /rule 1, key "action"/);
    assert.throws(() => parseRules('[[rule]]\nkind = "grant_everything"\naction = "allow"\n'), /rule 1, key "kind"/);
    assert.throws(() => parseRules('[rules]\n'), /top level/);
    assert.throws(() => parseRules('[[rule]\n'), /not valid TOML/);
    assert.deepEqual(parseRules(''), []);
  });
});
