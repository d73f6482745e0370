import { nextCronRuns } from './cron.js';
import type { Routine } from './spec.js';

/*
 * The decisions taken before a run may call the model, as pure functions: was the tick missed, and
 * does the budget allow a run (and how many tokens may it use)? The runner records whichever says no.
 */

/** How late a scheduled run may start and still count as on time: half its period, 2 s to 5 min. */
export function missedGraceMs(r: Pick<Routine, 'trigger' | 'timezone'>, scheduledAt: number): number {
  const t = r.trigger;
  let period = 10 * 60_000;
  if (t.type === 'interval') period = t.everySeconds * 1000;
  if (t.type === 'cron' && r.timezone) period = (nextCronRuns(t.cron, r.timezone, scheduledAt)[0] ?? scheduledAt + period) - scheduledAt;
  return Math.min(5 * 60_000, Math.max(2_000, period / 2));
}

/**
 * A tick that starts later than its grace was missed (the scheduler was down or busy). BullMQ keeps
 * one pending tick per routine, so after downtime there is at most one such late tick: with
 * "catch_up" it runs once, with "skip" it is recorded as skipped_missed.
 */
export function isMissed(r: Pick<Routine, 'trigger' | 'timezone'>, scheduledAt: number, now: number): boolean {
  return now - scheduledAt > missedGraceMs(r, scheduledAt);
}

/** Rough token count of a prompt (4 characters a token), to refuse a run that cannot fit its budget. */
export function estimateTokens(...texts: string[]): number {
  return Math.ceil(texts.reduce((n, t) => n + t.length, 0) / 4);
}

export interface Usage {
  /** Runs that reached the model today (the routine's local day). */
  runsToday: number;
  /** Tokens counted against the daily cap today (for the heartbeat: all of the owner's heartbeat runs). */
  tokensToday: number;
}

export type BudgetDecision = { ok: true; maxTokens: number } | { ok: false; reason: string };

/**
 * Checked before the model is called. A run may use at most min(per-run cap, what is left of the
 * daily cap). A run cannot be stopped in the middle of one model call, so it can overshoot by at
 * most that call; the cap then stops the next run.
 */
export function checkBudget(r: Pick<Routine, 'budget'>, usage: Usage, promptTokens: number): BudgetDecision {
  const b = r.budget;
  if (b.maxRunsPerDay !== undefined && usage.runsToday >= b.maxRunsPerDay) {
    return { ok: false, reason: `daily run limit reached: ${usage.runsToday} of ${b.maxRunsPerDay} runs today` };
  }
  let allowance = b.maxTokensPerRun;
  if (b.maxTokensPerDay !== undefined) {
    const left = b.maxTokensPerDay - usage.tokensToday;
    if (left <= 0) return { ok: false, reason: `daily token cap reached: ${usage.tokensToday} of ${b.maxTokensPerDay} tokens used today` };
    allowance = Math.min(allowance, left);
  }
  if (promptTokens >= allowance) {
    return { ok: false, reason: `the prompt alone is about ${promptTokens} tokens, more than the ${allowance} this run may use` };
  }
  return { ok: true, maxTokens: allowance };
}
