import { nextCronRuns } from './cron.js';
import { describeTrigger, formatTarget, type Routine } from './spec.js';
import type { RunRecord } from './store.js';
import { formatLocal } from './time.js';

/*
 * How routines and runs look in `bulwark routine list|history` (text and --json). Never includes a
 * webhook secret: only whether the routine has one.
 */

/** The next time a routine fires, when the database alone can tell (cron and one-shots). */
export function nextRun(r: Routine, now = Date.now()): number | undefined {
  if (!r.enabled) return undefined;
  if (r.trigger.type === 'cron' && r.timezone) return nextCronRuns(r.trigger.cron, r.timezone, now)[0];
  if (r.trigger.type === 'once') return r.trigger.runAt > now ? r.trigger.runAt : undefined;
  return undefined;
}

export function routineJson(r: Routine, last: RunRecord | undefined) {
  const next = nextRun(r);
  return {
    id: r.id, name: r.name, kind: r.kind, owner: r.owner, enabled: r.enabled, trigger: r.trigger, timezone: r.timezone ?? null,
    to: formatTarget(r.target), activeHours: r.activeHours ?? null, budget: { maxTokensPerRun: r.budget.maxTokensPerRun, maxTokensPerDay: r.budget.maxTokensPerDay ?? null, maxRunsPerDay: r.budget.maxRunsPerDay ?? null }, missedRuns: r.missedRuns, webhook: r.hasWebhookSecret,
    instructions: r.instructions, next: next ? new Date(next).toISOString() : null, lastRun: last ? runJson(last) : null,
  };
}

export function runJson(run: RunRecord) {
  return {
    id: run.id, trigger: run.trigger, outcome: run.outcome, detail: run.detail, scheduledAt: run.scheduledAt?.toISOString() ?? null,
    startedAt: run.startedAt.toISOString(), finishedAt: run.finishedAt?.toISOString() ?? null,
    tokens: { input: run.tokensIn, output: run.tokensOut }, messageId: run.messageId, worker: run.worker,
  };
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n');
}

const when = (ms: number, tz: string | undefined) => (tz ? formatLocal(ms, tz) : `${new Date(ms).toISOString().slice(0, 16).replace('T', ' ')} UTC`);

export function routinesTable(items: Array<{ routine: Routine; last: RunRecord | undefined }>): string {
  if (items.length === 0) return 'No routines. Add one with `bulwark routine add NAME --to web:<conversation id> --every 1h --prompt "…"`.';
  const rows = [['NAME', 'TRIGGER', 'TO', 'STATE', 'NEXT', 'LAST RUN']];
  for (const { routine: r, last } of items) {
    const next = nextRun(r);
    rows.push([
      r.name, describeTrigger(r) + (r.activeHours ? ` ${r.activeHours}` : ''), formatTarget(r.target), r.enabled ? 'on' : 'off',
      next ? when(next, r.timezone) : r.enabled && r.trigger.type === 'interval' ? 'per interval' : '-',
      last ? `${last.outcome} (${when(last.startedAt.getTime(), r.timezone)})` : 'never',
    ]);
  }
  return table(rows);
}

export function historyTable(r: Routine, runs: RunRecord[]): string {
  if (runs.length === 0) return `"${r.name}" has not run yet.`;
  const rows = [['STARTED', 'TRIGGER', 'OUTCOME', 'TOKENS', 'DETAIL']];
  for (const run of runs) {
    rows.push([when(run.startedAt.getTime(), r.timezone), run.trigger, run.outcome, String(run.tokensIn + run.tokensOut), run.detail ?? (run.messageId ? `message ${run.messageId}` : '')]);
  }
  return table(rows);
}
