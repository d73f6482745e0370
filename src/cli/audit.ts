import type { Command } from 'commander';
import { formatAuditLine, loadAuditKey, queryAudit, verifyAudit, type VerifyReport } from '../audit/index.js';
import type { LoadedConfig } from '../config/load.js';
import { openConfiguredDb, type Db } from '../db/client.js';
import { UserError } from '../errors.js';
import { config, fail } from './common.js';

/*
 * `bulwark audit …` reads the database directly: verifying the log must work while the hub is
 * stopped (and should not depend on the process whose record it checks).
 */

async function withDb<T>(fn: (db: Db, loaded: LoadedConfig) => Promise<T>): Promise<T> {
  const loaded = config();
  const { db } = await openConfiguredDb(loaded.config.database.url, loaded.home);
  try {
    return await fn(db, loaded);
  } finally {
    await db.$disconnect();
  }
}

/** `2026-11-28T10:00:00Z`, `2026-11-28`, or a span back from now: `30m`, `6h`, `7d`. */
export function parseSince(s: string, now = Date.now()): Date {
  const rel = /^(\d{1,6})([mhd])$/.exec(s.trim());
  if (rel) return new Date(now - Number(rel[1]) * { m: 60_000, h: 3_600_000, d: 86_400_000 }[rel[2] as 'm' | 'h' | 'd']);
  const t = Date.parse(s);
  if (Number.isNaN(t)) throw new UserError(`--since "${s}" is not a time.`, 'use an ISO time (2026-11-28T10:00:00Z), a date (2026-11-28), or a span such as 30m, 6h, 7d');
  return new Date(t);
}

function count(v: string, what: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 10_000) throw new UserError(`${what} must be a whole number from 1 to 10000.`, `e.g. ${what} 50`);
  return n;
}

function printReport(r: VerifyReport): void {
  if (r.ok) process.stdout.write(`audit log OK: ${r.entries} entries, chain intact; ${r.checkpoints.matched}/${r.checkpoints.total} checkpoints match${r.checkpoints.signed ? ` (${r.checkpoints.signed} signed)` : ''}; all ${r.messages.checked} stored user messages have their message.accepted entry\n`);
  else {
    const first = r.problems[0]!;
    process.stdout.write(`audit log BROKEN${first.seq > 0 ? ` at entry ${first.seq}` : ''}: ${first.message}\n`);
    for (const p of r.problems.slice(1)) process.stdout.write(`  also: ${p.message}\n`);
  }
  for (const w of r.warnings) process.stdout.write(`  note: ${w}\n`);
}

export function registerAudit(program: Command): void {
  const audit = program.command('audit').description('the tamper-evident audit log: verify, tail, search');

  audit.command('verify')
    .description('walk the hash chain and the checkpoints; exit 1 at the first broken link')
    .option('--json', 'print the report as JSON')
    .action(async (opts: { json?: boolean }) => {
      const ok = await withDb(async (db, loaded) => {
        const report = await verifyAudit(db, { home: loaded.home, key: loadAuditKey(loaded.config.audit, loaded.home) });
        if (opts.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
        else printReport(report);
        return report.ok;
      }).catch(fail);
      process.exitCode = ok ? 0 : 1;
    });

  audit.command('tail')
    .description('the newest entries')
    .option('-n, --lines <n>', 'how many', '20')
    .option('-f, --follow', 'keep printing new entries (Ctrl-C to stop)')
    .option('--json', 'one JSON object per line')
    .action(async (opts: { lines: string; follow?: boolean; json?: boolean }) => {
      await withDb(async (db) => {
        const print = (e: Awaited<ReturnType<typeof queryAudit>>[number]) => process.stdout.write(`${opts.json ? JSON.stringify(e) : formatAuditLine(e)}\n`);
        const entries = await queryAudit(db, { newest: true, limit: count(opts.lines, '-n') });
        entries.forEach(print);
        if (!opts.follow) return;
        let last = entries.at(-1)?.seq ?? 0;
        for (;;) {
          await new Promise((r) => setTimeout(r, 1000));
          for (const e of await queryAudit(db, { afterSeq: last, limit: 1000 })) { print(e); last = e.seq; }
        }
      }).catch(fail);
    });

  audit.command('search')
    .description('entries by kind (prefix: "approval" matches approval.*), actor and time')
    .option('--kind <kind>', 'e.g. web.login, message, approval')
    .option('--actor <actor>', 'e.g. owner, agent:default, telegram:12345')
    .option('--since <time>', 'ISO time, date, or 30m / 6h / 7d')
    .option('--limit <n>', 'at most this many (oldest first)', '200')
    .option('--json', 'one JSON object per line')
    .action(async (opts: { kind?: string; actor?: string; since?: string; limit: string; json?: boolean }) => {
      await withDb(async (db) => {
        const entries = await queryAudit(db, { kind: opts.kind, actor: opts.actor, since: opts.since ? parseSince(opts.since) : undefined, limit: count(opts.limit, '--limit') });
        for (const e of entries) process.stdout.write(`${opts.json ? JSON.stringify(e) : formatAuditLine(e)}\n`);
        if (!opts.json && entries.length === 0) process.stdout.write('no matching entries\n');
      }).catch(fail);
    });
}
