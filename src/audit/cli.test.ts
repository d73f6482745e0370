import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli } from '../../test/support/process.js';
import { parseSince } from '../cli/audit.js';
import { AuditLog } from './log.js';
import { tempDb } from './test-support.js';

describe('bulwark audit (hub stopped: straight on the database)', () => {
  it('verify exits 0 on an intact log and 1 with the seq of the first broken link; search and tail print entries', async () => {
    const t = tempDb();
    const keyFile = join(t.home, 'audit.key');
    writeFileSync(keyFile, 'a-key-that-lives-outside-the-db-123\n', { mode: 0o600 });
    const env = { BULWARK_HOME: t.home, BULWARK_AUDIT_KEY_FILE: keyFile };
    const db = await t.open();
    try {
      const log = new AuditLog(db, { home: t.home, key: Buffer.from('a-key-that-lives-outside-the-db-123'), checkpointEvery: 3 });
      for (let i = 0; i < 6; i++) await log.append({ kind: i % 2 ? 'web.login' : 'message.accepted', actor: i % 2 ? 'owner' : 'web:owner', subject: `c_${i}`, data: { bytes: i } });
      await log.close();
    } finally { await db.$disconnect(); }

    const ok = await runCli(['audit', 'verify'], env);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /audit log OK: 6 entries, chain intact; 2\/2 checkpoints match \(2 signed\)/);

    const search = await runCli(['audit', 'search', '--kind', 'web', '--json'], env);
    assert.equal(search.code, 0, search.stderr);
    assert.deepEqual(search.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { seq: number }).seq), [2, 4, 6]);
    const tail = await runCli(['audit', 'tail', '-n', '2'], env);
    assert.deepEqual(tail.stdout.trim().split('\n').map((l) => Number(l.trim().split(/\s+/)[0])), [5, 6]);

    const raw = t.raw();
    try { raw.prepare(`UPDATE AuditEntry SET subject = 'c_other' WHERE seq = 3`).run(); } finally { raw.close(); }
    const broken = await runCli(['audit', 'verify'], env);
    assert.equal(broken.code, 1);
    assert.match(broken.stdout, /BROKEN at entry 3: entry 3 \(message.accepted\) was edited/);
    const json = await runCli(['audit', 'verify', '--json'], env);
    assert.equal(json.code, 1);
    assert.deepEqual((JSON.parse(json.stdout) as { problems: Array<{ seq: number }> }).problems.map((p) => p.seq), [3]);
    t.cleanup();
  });

  it('--since takes ISO times and spans', () => {
    const now = Date.parse('2026-11-28T12:00:00Z');
    assert.equal(parseSince('6h', now).toISOString(), '2026-11-28T06:00:00.000Z');
    assert.equal(parseSince('2026-11-01T00:00:00Z').toISOString(), '2026-11-01T00:00:00.000Z');
    assert.throws(() => parseSince('yesterday'), /is not a time/);
  });
});
