import type { Command } from 'commander';
import type { LoadedConfig } from '../config/load.js';
import { openConfiguredDb, type Db } from '../db/client.js';
import { openVaultOn, webhookKeySealer } from '../vault/index.js';
import { UserError } from '../errors.js';
import { draftFromOptions, type DraftDefaults, type RoutineOptions } from '../routines/draft.js';
import { historyTable, routineJson, routinesTable, runJson } from '../routines/format.js';
import { nextCronRuns } from '../routines/cron.js';
import { DEFAULT_OWNER, describeTrigger, formatTarget, HEARTBEAT_NAME, type Draft, type Routine } from '../routines/spec.js';
import { RoutineStore, toDraft } from '../routines/store.js';
import { formatLocal } from '../routines/time.js';
import { config, fail, hubFetch } from './common.js';

/*
 * `bulwark routine …`: list, add, edit, rm and history work on the database directly (the hub need
 * not run); run asks the running hub to queue a run. After a change the CLI asks the hub to apply the
 * schedules at once; without a hub they apply when a scheduler starts (or within routines.sync_seconds).
 */

async function withStore<T>(fn: (s: { store: RoutineStore; db: Db; loaded: LoadedConfig }) => Promise<T>): Promise<T> {
  const loaded = config();
  const { db } = await openConfiguredDb(loaded.config.database.url, loaded.home);
  try {
    const { vault } = await openVaultOn(db, loaded.home, { create: true });
    return await fn({ store: new RoutineStore(db, webhookKeySealer(vault)), db, loaded });
  } finally {
    await db.$disconnect();
  }
}

async function find(store: RoutineStore, name: string): Promise<Routine> {
  const r = await store.getByName(DEFAULT_OWNER, name);
  if (!r) throw new UserError(`no routine named "${name}".`, 'see `bulwark routine list`');
  return r;
}

function defaults(loaded: LoadedConfig): DraftDefaults {
  const c = loaded.config.routines;
  return { timezone: c.timezone, maxTokensPerRun: c.max_tokens_per_run, maxTokensPerDay: c.max_tokens_per_day };
}

/** Web and CLI chats exist only once opened: a routine cannot speak into one that does not. */
async function checkTarget(db: Db, d: Draft): Promise<void> {
  const { channel, chatId } = d.target;
  if ((channel === 'web' || channel === 'cli') && (await db.conversation.findUnique({ where: { id: chatId }, select: { channel: true } }))?.channel !== channel) {
    throw new UserError(`there is no ${channel} conversation "${chatId}".`, 'open the web chat (or `bulwark chat`), send a message, and use its conversation id: --to web:c_…');
  }
}

async function applySchedules(loaded: LoadedConfig): Promise<string> {
  try {
    const r = await hubFetch(loaded, '/api/routines/sync', { method: 'POST', body: '{}' });
    if (r.ok) return 'the running hub applied the schedule';
  } catch { /* not running: fine */ }
  return `the hub is not reachable: the schedule applies when a scheduler starts (or within ${loaded.config.routines.sync_seconds} s)`;
}

function describe(r: Routine, secret: string | undefined, loaded: LoadedConfig): string {
  const lines = [`${r.name}: ${describeTrigger(r)} → ${formatTarget(r.target)} (${r.enabled ? 'enabled' : 'disabled'})`];
  if (r.trigger.type === 'cron' && r.timezone) lines.push(`next runs: ${nextCronRuns(r.trigger.cron, r.timezone, Date.now(), 3).map((t) => formatLocal(t, r.timezone!)).join(', ')}`);
  if (r.trigger.type === 'once') lines.push(`runs at: ${r.timezone ? formatLocal(r.trigger.runAt, r.timezone) : new Date(r.trigger.runAt).toISOString()}`);
  if (!r.timezone) lines.push('time zone: none, so its budget day runs on UTC (set --tz or routines.timezone)');
  if (secret) {
    lines.push(`webhook: POST ${hubBase(loaded)}/hooks/routines/${r.id}`);
    lines.push(`webhook secret (shown only now; store it, or make a new one with \`bulwark routine edit ${r.name} --rotate-secret\`):`, secret);
  }
  return lines.join('\n');
}

/** The hub's address as configured here (behind a proxy, use the public URL instead). */
function hubBase(loaded: LoadedConfig): string {
  const host = loaded.config.server.host.includes(':') ? `[${loaded.config.server.host}]` : loaded.config.server.host;
  return `http://${host}:${loaded.config.server.port}`;
}

function addTriggerOptions(cmd: Command): Command {
  return cmd
    .option('--to <target>', 'where it speaks: CHANNEL:CHAT (web:c_…) or CHANNEL:ACCOUNT:CHAT')
    .option('--cron <expr>', 'five-field cron, e.g. "30 8 * * 1-5" (needs --tz or routines.timezone)')
    .option('--every <duration>', 'fixed interval: 30s, 15m, 2h, 1d')
    .option('--at <time>', 'once: "2026-12-01 09:00" (in --tz) or ISO with offset')
    .option('--webhook', 'run on POST /hooks/routines/<id>, signed with its secret')
    .option('--tz <zone>', 'IANA time zone, e.g. Europe/Berlin (default: routines.timezone)')
    .option('--prompt <text>', 'instructions')
    .option('--file <path>', 'instructions from a file (a prompt or a checklist)')
    .option('--active-hours <range>', 'run scheduled ticks only in HH:MM-HH:MM (or "always")')
    .option('--max-tokens-per-run <n>', 'tokens one run may use')
    .option('--max-tokens-per-day <n>', 'tokens all runs of a day may use')
    .option('--max-runs-per-day <n>', 'runs per day that reach the model')
    .option('--missed <policy>', 'a run due while no scheduler ran: skip | catch-up (run once)');
}

export function registerRoutine(program: Command): void {
  const routine = program.command('routine').description('scheduled and webhook routines: list, add, edit, rm, run, history');
  // Validation errors are plain Errors whose message names the option and the fix: fail() prints them.
  const act = (fn: (...args: any[]) => Promise<void>) => async (...args: any[]) => { try { await fn(...args); } catch (err) { fail(err); } };

  routine.command('list').description('list routines with their next and last run').option('--json', 'print JSON')
    .action(act(async (opts: { json?: boolean }) => withStore(async ({ store }) => {
      const items = await Promise.all((await store.list(DEFAULT_OWNER)).map(async (r) => ({ routine: r, last: await store.lastRun(r.id) })));
      process.stdout.write((opts.json ? JSON.stringify(items.map((i) => routineJson(i.routine, i.last)), null, 2) : routinesTable(items)) + '\n');
    })));

  addTriggerOptions(routine.command('add <name>').description('add a routine'))
    .option('--disabled', 'add it switched off')
    .action(act(async (name: string, opts: RoutineOptions) => withStore(async ({ store, db, loaded }) => {
      const draft = draftFromOptions(name, opts, undefined, defaults(loaded));
      await checkTarget(db, draft);
      const { routine: r, secret } = await store.create(draft, { owner: DEFAULT_OWNER });
      process.stdout.write(`added ${describe(r, secret, loaded)}\n${await applySchedules(loaded)}\n`);
    })));

  addTriggerOptions(routine.command('edit <name>').description('change a routine (only the options given change)'))
    .option('--enable', 'switch it on').option('--disable', 'switch it off').option('--rename <name>', 'new name')
    .option('--rotate-secret', 'new webhook secret (the old one stops working)')
    .action(act(async (name: string, opts: RoutineOptions & { rotateSecret?: boolean }) => withStore(async ({ store, db, loaded }) => {
      const current = await find(store, name);
      const { rotateSecret, ...changes } = opts;
      const changing = Object.keys(changes).length > 0;
      if (current.kind === 'heartbeat' && changing) throw new UserError('the heartbeat is configured in bulwark.toml [heartbeat] (or BULWARK_HEARTBEAT_*).', `only \`bulwark routine edit ${HEARTBEAT_NAME} --rotate-secret\` works here`);
      let r = current;
      let secret: string | undefined;
      if (changing) {
        const draft = draftFromOptions(name, changes, toDraft(current), defaults(loaded));
        if (changes.to !== undefined) await checkTarget(db, draft);
        ({ routine: r, secret } = await store.update(current.id, draft));
      }
      if (rotateSecret) {
        if (r.trigger.type !== 'webhook' && r.kind !== 'heartbeat') throw new UserError(`"${r.name}" is not a webhook routine, so it has no secret.`, 'make it one with --webhook');
        secret = await store.rotateSecret(r.id);
      }
      process.stdout.write(`updated ${describe(r, secret, loaded)}\n${changing ? `${await applySchedules(loaded)}\n` : ''}`);
    })));

  routine.command('rm <name>').description('remove a routine and its history')
    .action(act(async (name: string) => withStore(async ({ store, loaded }) => {
      const r = await find(store, name);
      if (r.kind === 'heartbeat') throw new UserError('the heartbeat cannot be removed.', 'switch it off with heartbeat.enabled = false in bulwark.toml');
      await store.remove(r.id);
      process.stdout.write(`removed ${r.name}\n${await applySchedules(loaded)}\n`);
    })));

  routine.command('run <name>').description('run a routine now (through the running hub; its budget applies)')
    .option('--no-wait', 'return once the run is queued')
    .option('--timeout <seconds>', 'how long to wait for the outcome', '120')
    .action(act(async (name: string, opts: { wait: boolean; timeout: string }) => withStore(async ({ store, loaded }) => {
      const r = await find(store, name);
      const res = await hubFetch(loaded, `/api/routines/${encodeURIComponent(r.name)}/run`, { method: 'POST', body: '{}' });
      const body = (await res.json()) as { runId?: string; error?: string };
      if (!res.ok || !body.runId) throw new UserError(`the hub refused: ${body.error ?? `HTTP ${res.status}`}`);
      if (!opts.wait) { process.stdout.write(`queued run ${body.runId}\n`); return; }
      const end = Date.now() + Number(opts.timeout) * 1000;
      for (let delay = 100; Date.now() < end; delay = Math.min(1000, delay * 1.5)) {
        const run = (await store.history(r.id, 20)).find((x) => x.id === body.runId);
        if (run && run.outcome !== 'running') {
          process.stdout.write(`${run.outcome}${run.detail ? `: ${run.detail}` : ''} (${run.tokensIn + run.tokensOut} tokens)\n`);
          if (run.outcome === 'failed') process.exitCode = 1;
          return;
        }
        await new Promise((res2) => setTimeout(res2, delay));
      }
      throw new UserError(`run ${body.runId} has not finished within ${opts.timeout} s.`, `check later with \`bulwark routine history ${r.name}\`; is a scheduler running?`);
    })));

  routine.command('history <name>').description('recent runs: outcome, tokens, what was delivered').option('--limit <n>', 'how many runs', '20').option('--json', 'print JSON')
    .action(act(async (name: string, opts: { limit: string; json?: boolean }) => withStore(async ({ store }) => {
      const limit = Number(opts.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new UserError('--limit must be a whole number from 1 to 1000.');
      const r = await find(store, name);
      const runs = await store.history(r.id, limit);
      process.stdout.write((opts.json ? JSON.stringify(runs.map(runJson), null, 2) : historyTable(r, runs)) + '\n');
    })));
}
