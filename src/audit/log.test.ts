import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, readFileSync } from 'node:fs';
import type { Db } from '../db/client.js';
import { entryHash, GENESIS_HASH } from './canonical.js';
import { checkpointPath, readCheckpoints } from './checkpoints.js';
import { AuditLog, NO_DURABLE_AUDIT } from './log.js';
import { queryAudit } from './query.js';
import { tempDb, type TempDb } from './test-support.js';
import { verifyAudit } from './verify.js';

const KEY = Buffer.from('test-audit-key-0123456789abcdef');

async function fill(log: AuditLog, n: number, kind = 'test.event'): Promise<void> {
  for (let i = 0; i < n; i++) await log.append({ kind, actor: 'tester', subject: `s${i}`, data: { i, bytes: i * 10 } });
}

describe('audit log: hash chain and verify', () => {
  let t: TempDb;
  let db: Db;
  let log: AuditLog;

  before(async () => {
    t = tempDb();
    db = await t.open();
    log = new AuditLog(db, { home: t.home, key: KEY, checkpointEvery: 5 });
  });
  after(async () => { await db?.$disconnect(); t?.cleanup(); });

  it('links every entry to the one before and passes verify when untouched', async () => {
    await fill(log, 12);
    await log.close();
    const entries = await queryAudit(db, { limit: 100 });
    assert.deepEqual(entries.map((e) => e.seq), [...Array(12).keys()].map((i) => i + 1));
    assert.equal(entries[0]!.prevHash, GENESIS_HASH);
    for (let i = 1; i < entries.length; i++) assert.equal(entries[i]!.prevHash, entries[i - 1]!.hash);
    // Checkpoints at 5, 10, and the closing one at 12, all signed.
    assert.deepEqual(readCheckpoints(t.home).map((c) => [c.checkpoint?.seq, typeof c.checkpoint?.mac]), [[5, 'string'], [10, 'string'], [12, 'string']]);
    const report = await verifyAudit(db, { home: t.home, key: KEY });
    assert.equal(report.ok, true, JSON.stringify(report.problems));
    assert.equal(report.entries, 12);
    assert.deepEqual(report.checkpoints, { total: 3, signed: 3, matched: 3 });
  });

  it('search filters by kind prefix, actor and time; tail returns the newest', async () => {
    const l2 = new AuditLog(db, {});
    await l2.append({ kind: 'approval.requested', actor: 'agent:default', data: {} });
    await l2.append({ kind: 'approval.decided', actor: 'owner', data: {} });
    assert.deepEqual((await queryAudit(db, { kind: 'approval' })).map((e) => e.kind), ['approval.requested', 'approval.decided']);
    assert.deepEqual((await queryAudit(db, { actor: 'owner' })).map((e) => e.kind), ['approval.decided']);
    assert.deepEqual((await queryAudit(db, { newest: true, limit: 2 })).map((e) => e.seq), [13, 14]);
    assert.equal((await queryAudit(db, { since: new Date(Date.now() + 60_000) })).length, 0);
    await l2.close();
  });
});

describe('audit verify pinpoints tampering', () => {
  async function tampered(setup: (t: TempDb) => void, opts: { checkpointEvery?: number; count?: number } = {}) {
    const t = tempDb();
    const db = await t.open();
    try {
      const log = new AuditLog(db, { home: t.home, key: KEY, checkpointEvery: opts.checkpointEvery ?? 1000 });
      await fill(log, opts.count ?? 8);
      await log.close();
      assert.equal((await verifyAudit(db, { home: t.home, key: KEY })).ok, true);
      const raw = t.raw();
      try { setup(t); } finally { raw.close(); }
      return await verifyAudit(db, { home: t.home, key: KEY });
    } finally {
      await db.$disconnect();
      t.cleanup();
    }
  }
  const sql = (t: TempDb, ...stmts: string[]) => { const r = t.raw(); try { for (const s of stmts) r.exec(s); } finally { r.close(); } };

  it('an edited row', async () => {
    const r = await tampered((t) => sql(t, `UPDATE AuditEntry SET data = '{"bytes":0,"i":99}' WHERE seq = 4`));
    assert.equal(r.ok, false);
    assert.deepEqual([r.problems[0]!.kind, r.problems[0]!.seq], ['edited', 4]);
  });

  it('an edited actor, re-hashed by the editor: the next link breaks', async () => {
    const r = await tampered((t) => {
      const raw = t.raw();
      try {
        const row = raw.prepare('SELECT * FROM AuditEntry WHERE seq = 3').get() as { seq: number; time: number | string; kind: string; actor: string; subject: string | null; data: string; prevHash: string };
        const forged = entryHash(row.prevHash, { ...row, time: new Date(row.time), actor: 'someone-else' });
        raw.prepare('UPDATE AuditEntry SET actor = ?, hash = ? WHERE seq = 3').run('someone-else', forged);
      } finally { raw.close(); }
    });
    assert.deepEqual([r.problems[0]!.kind, r.problems[0]!.seq], ['relinked', 4]);
  });

  it('a deleted row', async () => {
    const r = await tampered((t) => sql(t, 'DELETE FROM AuditEntry WHERE seq = 5'));
    assert.deepEqual([r.problems[0]!.kind, r.problems[0]!.seq], ['missing', 5]);
    assert.match(r.problems[0]!.message, /entry 5 is missing/);
  });

  it('reordered rows', async () => {
    const r = await tampered((t) => sql(t,
      'UPDATE AuditEntry SET seq = 1000 WHERE seq = 3', 'UPDATE AuditEntry SET seq = 3 WHERE seq = 4', 'UPDATE AuditEntry SET seq = 4 WHERE seq = 1000'));
    assert.deepEqual([r.problems[0]!.kind, r.problems[0]!.seq], ['relinked', 3]);
  });

  it('a deleted tail: the head row says more', async () => {
    const r = await tampered((t) => sql(t, 'DELETE FROM AuditEntry WHERE seq > 6'));
    assert.deepEqual([r.problems[0]!.kind, r.problems[0]!.seq], ['truncated', 7]);
  });

  it('a deleted tail with the head row moved back too: the checkpoint catches it', async () => {
    const r = await tampered((t) => sql(t,
      'DELETE FROM AuditEntry WHERE seq > 6',
      `UPDATE AuditHead SET seq = 6, hash = (SELECT hash FROM AuditEntry WHERE seq = 6) WHERE id = 1`), { checkpointEvery: 4 });
    assert.equal(r.ok, false);
    assert.deepEqual(r.problems.map((p) => [p.kind, p.seq]), [['truncated', 7]]);
    assert.match(r.problems[0]!.message, /checkpoint .* records entry 8, but the log ends at entry 6/);
  });

  it('a whole chain rewritten with recomputed hashes: it no longer matches the checkpoint', async () => {
    const r = await tampered((t) => {
      const raw = t.raw();
      try {
        raw.prepare(`UPDATE AuditEntry SET data = '{"bytes":0,"i":42}' WHERE seq = 2`).run();
        let prev = GENESIS_HASH;
        for (const row of raw.prepare('SELECT * FROM AuditEntry ORDER BY seq').all() as Array<{ seq: number; time: number | string; kind: string; actor: string; subject: string | null; data: string }>) {
          const hash = entryHash(prev, { ...row, time: new Date(row.time) });
          raw.prepare('UPDATE AuditEntry SET prevHash = ?, hash = ? WHERE seq = ?').run(prev, hash, row.seq);
          prev = hash;
        }
        raw.prepare('UPDATE AuditHead SET hash = ? WHERE id = 1').run(prev);
      } finally { raw.close(); }
    }, { checkpointEvery: 4 });
    assert.equal(r.ok, false);
    assert.deepEqual(r.problems.map((p) => [p.kind, p.seq]), [['checkpoint', 4], ['checkpoint', 8]]);
  });

  it('a forged checkpoint line (wrong key) and a garbled one', async () => {
    const r = await tampered((t) => {
      appendFileSync(checkpointPath(t.home), `${JSON.stringify({ seq: 2, hash: 'a'.repeat(64), time: new Date().toISOString(), mac: 'b'.repeat(64) })}\nnot json\n`);
    });
    assert.deepEqual(r.problems.map((p) => p.kind), ['checkpoint', 'checkpoint']);
    assert.match(r.problems[0]!.message, /wrong signature/);
    assert.match(r.problems[1]!.message, /line 3 is not valid JSON/);
  });
});

describe('audit log: concurrent appenders', () => {
  it('two AuditLog instances over two database clients keep one valid chain', async () => {
    const t = tempDb();
    const [a, b] = [await t.open(), await t.open()];
    try {
      const la = new AuditLog(a, { home: t.home, checkpointEvery: 10 });
      const lb = new AuditLog(b, { home: t.home, checkpointEvery: 10 });
      await Promise.all([
        ...Array.from({ length: 40 }, (_, i) => la.append({ kind: 'test.a', actor: 'a', data: { i } })),
        ...Array.from({ length: 40 }, (_, i) => lb.append({ kind: 'test.b', actor: 'b', data: { i } })),
      ]);
      await Promise.all([la.close(), lb.close()]);
      assert.equal(la.failures + lb.failures, 0);
      const report = await verifyAudit(a, { home: t.home });
      assert.equal(report.ok, true, JSON.stringify(report.problems));
      assert.equal(report.entries, 80);
      assert.equal((await queryAudit(a, { kind: 'test.a', limit: 1000 })).length, 40);
    } finally {
      await a.$disconnect();
      await b.$disconnect();
      t.cleanup();
    }
  });
});

describe('audit log: the durable sink', () => {
  it('resolves with the entry once it is committed, and with undefined (logged and counted) when the write fails', async () => {
    const t = tempDb();
    const db = await t.open();
    try {
      const failed: string[] = [];
      const log = new AuditLog(db, { onFailure: (err) => failed.push(err.message) });
      const [a, b] = await Promise.all([log.durable({ kind: 'test.durable', actor: 'a' }), log.durable({ kind: 'test.durable', actor: 'b' })]);
      // No flush: what a caller sees once its await returns is already in the table.
      const rows = await db.auditEntry.findMany({ where: { kind: 'test.durable' }, orderBy: { seq: 'asc' } });
      assert.deepEqual(rows.map((r) => [r.seq, r.actor]), [[a!.seq, 'a'], [b!.seq, 'b']]);

      const raw = t.raw();
      try { raw.exec('DELETE FROM AuditHead'); } finally { raw.close(); }
      assert.equal(await log.durable({ kind: 'test.durable', actor: 'c' }), undefined);
      assert.equal(log.failures, 1);
      assert.match(failed[0]!, /no head row/);
      assert.equal(await NO_DURABLE_AUDIT({ kind: 'test.durable', actor: 'd' }), undefined);
    } finally {
      await db.$disconnect();
      t.cleanup();
    }
  });
});

describe('audit verify: stored messages against their accepted entries', () => {
  it('a stored user message without a message.accepted entry is a named problem; one with it, or an assistant message, is not', async () => {
    const t = tempDb();
    const db = await t.open();
    try {
      const log = new AuditLog(db, {});
      await log.append({ kind: 'hub.started', actor: 'system' });
      await db.conversation.create({ data: { id: 'c_verifytest1', channel: 'web', accountId: 'local', chatId: 'c_verifytest1' } });
      const message = (id: string, role: string) => db.message.create({ data: { id, conversationId: 'c_verifytest1', role, body: 'sealed elsewhere' } });
      await message('in/web/local/m_recorded', 'user');
      await log.append({ kind: 'message.accepted', actor: 'web:owner', subject: 'c_verifytest1', data: { channel: 'web', messageId: 'in/web/local/m_recorded', bytes: 5 } });
      await message('reply/web/local/m_recorded', 'assistant');
      const ok = await verifyAudit(db, {});
      assert.equal(ok.ok, true, JSON.stringify(ok.problems));
      assert.deepEqual(ok.messages, { checked: 1, unrecorded: 0 });

      await message('in/web/local/m_unrecorded', 'user');
      const gap = await verifyAudit(db, {});
      assert.equal(gap.ok, false);
      assert.deepEqual(gap.messages, { checked: 2, unrecorded: 1 });
      assert.deepEqual(gap.problems.map((p) => p.kind), ['unrecorded']);
      assert.match(gap.problems[0]!.message, /message in\/web\/local\/m_unrecorded \(conversation c_verifytest1\) is stored but has no message\.accepted entry/);
    } finally {
      await db.$disconnect();
      t.cleanup();
    }
  });
});
