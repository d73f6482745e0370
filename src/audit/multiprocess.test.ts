import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { queryAudit } from './query.js';
import { tempDb } from './test-support.js';
import { verifyAudit } from './verify.js';

const CHILD = join(dirname(fileURLToPath(import.meta.url)), 'append-child.ts');

function run(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    child.once('exit', (code) => resolve({ code, out, err }));
  });
}

describe('audit log: several processes on one database', () => {
  it('three processes appending at once leave one unbroken chain', async () => {
    const t = tempDb();
    const db = await t.open();
    try {
      const results = await Promise.all(['gateway', 'worker', 'scheduler'].map((name) => run([t.file, t.home, name, '300'])));
      for (const r of results) {
        assert.equal(r.code, 0, r.err);
        assert.equal(r.out.trim(), 'done 0');
      }
      const report = await verifyAudit(db, { home: t.home });
      assert.equal(report.ok, true, JSON.stringify(report.problems));
      assert.equal(report.entries, 900);
      for (const name of ['gateway', 'worker', 'scheduler']) assert.equal((await queryAudit(db, { actor: name, limit: 1000 })).length, 300);
      assert.ok(report.checkpoints.matched >= 36, 'checkpoints from every process agree with the chain');
    } finally {
      await db.$disconnect();
      t.cleanup();
    }
  });
});
