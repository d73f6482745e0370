import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { openDb, resolveDbTarget, type Db } from '../db/client.js';
import { findPgBin, startPostgres, type Service } from '../../test/support/services.js';
import { AuditLog } from './log.js';
import { verifyAudit } from './verify.js';

const skip = !findPgBin() && process.env.CI !== 'true' ? 'PostgreSQL binaries not installed (node scripts/setup.mjs --tests installs them)' : false;

describe('audit log on PostgreSQL', { skip }, () => {
  let postgres: Service;
  let home: string;
  const dbs: Db[] = [];

  before(async () => {
    postgres = await startPostgres();
    home = mkdtempSync(join(tmpdir(), 'bulwark-audit-pg-'));
  });
  after(async () => {
    for (const db of dbs) await db.$disconnect();
    await postgres?.stop();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  it('concurrent appenders on two clients keep one chain; verify pinpoints an edited row', async () => {
    const target = resolveDbTarget(postgres.url, home);
    const a = await openDb(target);
    const b = await openDb(target);
    dbs.push(a, b);
    const la = new AuditLog(a, { home, checkpointEvery: 10 });
    const lb = new AuditLog(b, { home, checkpointEvery: 10 });
    await Promise.all([
      ...Array.from({ length: 30 }, (_, i) => la.append({ kind: 'test.a', actor: 'a', data: { i } })),
      ...Array.from({ length: 30 }, (_, i) => lb.append({ kind: 'test.b', actor: 'b', data: { i } })),
    ]);
    await Promise.all([la.close(), lb.close()]);
    const report = await verifyAudit(a, { home });
    assert.equal(report.ok, true, JSON.stringify(report.problems));
    assert.equal(report.entries, 60);

    const c = new pg.Client({ connectionString: postgres.url });
    await c.connect();
    try {
      await c.query(`UPDATE "AuditEntry" SET actor = 'mallory' WHERE seq = 17`);
    } finally { await c.end(); }
    const broken = await verifyAudit(a, { home });
    assert.deepEqual([broken.problems[0]?.kind, broken.problems[0]?.seq], ['edited', 17]);
  });
});
