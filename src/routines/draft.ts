import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { draftSchema, firstProblem, HEARTBEAT_NAME, parseDuration, parseTarget, type Draft, type Trigger } from './spec.js';
import { parseRunAt } from './time.js';

/*
 * `bulwark routine add|edit` options → a Draft. The options are checked here (zod, at the CLI's
 * edge); the Draft is then checked by draftSchema like any other. Errors name the option and the fix.
 */

const whole = (flag: string) => z.string().regex(/^\d+$/, `${flag} must be a whole number`).transform(Number).optional();

export const routineOptionsSchema = z.object({
  to: z.string().optional(),
  cron: z.string().optional(),
  every: z.string().optional(),
  at: z.string().optional(),
  webhook: z.boolean().optional(),
  tz: z.string().optional(),
  prompt: z.string().optional(),
  file: z.string().optional(),
  activeHours: z.string().optional(),
  maxTokensPerRun: whole('--max-tokens-per-run'),
  maxTokensPerDay: whole('--max-tokens-per-day'),
  maxRunsPerDay: whole('--max-runs-per-day'),
  missed: z.enum(['skip', 'catch-up'], { error: '--missed must be skip or catch-up' }).optional(),
  disabled: z.boolean().optional(),
  enable: z.boolean().optional(),
  disable: z.boolean().optional(),
  rename: z.string().optional(),
});
export type RoutineOptions = z.input<typeof routineOptionsSchema>;

export interface DraftDefaults {
  /** routines.timezone: what a routine without --tz inherits. */
  timezone: string | undefined;
  maxTokensPerRun: number;
  maxTokensPerDay: number;
}

function triggerFrom(o: z.output<typeof routineOptionsSchema>, tz: string | undefined, now: number): Trigger | undefined {
  const given = [o.cron !== undefined, o.every !== undefined, o.at !== undefined, o.webhook === true].filter(Boolean).length;
  if (given > 1) throw new Error('give one trigger: --cron, --every, --at or --webhook');
  if (o.cron !== undefined) return { type: 'cron', cron: o.cron };
  if (o.every !== undefined) return { type: 'interval', everySeconds: parseDuration(o.every) };
  if (o.webhook) return { type: 'webhook' };
  if (o.at !== undefined) {
    const runAt = parseRunAt(o.at, tz);
    if (runAt <= now) throw new Error(`--at ${o.at} is in the past: give a future time`);
    return { type: 'once', runAt };
  }
  return undefined;
}

/**
 * Builds the draft for `add NAME` (base undefined) or `edit` (base = the stored routine's draft; only
 * the options given change).
 */
export function draftFromOptions(name: string, raw: RoutineOptions, base: Draft | undefined, defaults: DraftDefaults, now = Date.now()): Draft {
  const parsed = routineOptionsSchema.safeParse(raw);
  if (!parsed.success) throw new Error(firstProblem(parsed.error));
  const o = parsed.data;
  if (!base && name === HEARTBEAT_NAME) throw new Error('"heartbeat" is the built-in heartbeat: configure it in bulwark.toml [heartbeat], or pick another name');
  if (o.enable && o.disable) throw new Error('give --enable or --disable, not both');
  const timezone = o.tz ?? base?.timezone ?? defaults.timezone;
  const trigger = triggerFrom(o, timezone, now) ?? base?.trigger;
  if (!trigger) throw new Error('say when it runs: --cron "30 8 * * 1-5", --every 30m, --at "2026-12-01 09:00" or --webhook');
  if (o.prompt !== undefined && o.file !== undefined) throw new Error('give --prompt or --file, not both');
  let instructions = o.prompt ?? base?.instructions;
  if (o.file !== undefined) {
    try { instructions = readFileSync(o.file, 'utf8'); } catch (err) { throw new Error(`--file ${o.file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`); }
  }
  if (instructions === undefined) throw new Error('say what it does: --prompt "Summarize…" or --file checklist.md');
  const to = o.to !== undefined ? parseTarget(o.to) : base?.target;
  if (!to) throw new Error('say where it speaks: --to web:<conversation id> (or CHANNEL:ACCOUNT:CHAT)');
  const activeHours = o.activeHours !== undefined ? (o.activeHours === 'always' ? undefined : o.activeHours) : base?.activeHours;
  const draft = {
    name: o.rename ?? base?.name ?? name,
    target: to, trigger, instructions,
    ...(timezone ? { timezone } : {}),
    ...(activeHours ? { activeHours } : {}),
    enabled: o.enable ? true : o.disable || o.disabled ? false : base?.enabled ?? true,
    maxTokensPerRun: o.maxTokensPerRun ?? base?.maxTokensPerRun ?? defaults.maxTokensPerRun,
    maxTokensPerDay: o.maxTokensPerDay ?? base?.maxTokensPerDay ?? defaults.maxTokensPerDay,
    ...((o.maxRunsPerDay ?? base?.maxRunsPerDay) !== undefined ? { maxRunsPerDay: o.maxRunsPerDay ?? base?.maxRunsPerDay } : {}),
    missedRuns: o.missed ? (o.missed === 'skip' ? 'skip' : 'catch_up') : base?.missedRuns ?? 'catch_up',
  };
  if (trigger.type === 'once' && draft.enabled && trigger.runAt <= now) throw new Error('this one-shot\'s time has passed: give a new --at to run it again');
  const checked = draftSchema.safeParse(draft);
  if (!checked.success) throw new Error(firstProblem(checked.error));
  return checked.data;
}
