import { getNextMillis } from 'bullmq';
import { isTimeZone } from './time.js';

/*
 * Cron expressions as routines accept them: exactly five fields (minute hour day-of-month month
 * day-of-week) and always with an IANA time zone. Next runs are computed by BullMQ's own
 * `getNextMillis`, the function its job schedulers use, so what `bulwark routine list` shows is what
 * the scheduler will do.
 *
 * Daylight saving time (cron-parser, as used by BullMQ):
 *  - a time skipped by spring-forward (02:30 on the night clocks jump 02:00 → 03:00) runs once, an
 *    hour later by the wall clock (03:30), the same elapsed time after midnight;
 *  - a time repeated by fall-back (01:30 twice) runs once, at its first occurrence;
 *  - patterns that fire every few minutes keep firing every real interval through the repeated hour.
 */

const FIELD = /^[0-9A-Za-z*?,/\-LW#]+$/;
const NAMES = ['minute', 'hour', 'day of month', 'month', 'day of week'];

/** Checks a 5-field pattern in a time zone; returns an error message naming the fix, or undefined. */
export function cronProblem(pattern: string, tz: string | undefined): string | undefined {
  if (!tz) return `cron "${pattern}" needs a time zone: pass --tz Europe/Berlin (any IANA name) or set routines.timezone (BULWARK_TIMEZONE); Bulwark never assumes UTC`;
  if (!isTimeZone(tz)) return `"${tz}" is not an IANA time zone: use a name such as Europe/Berlin, America/New_York or UTC`;
  const fields = pattern.trim().split(/\s+/);
  if (pattern.trim().startsWith('@')) return `cron "${pattern}": write the five fields instead of a shortcut (e.g. "0 9 * * *" for daily at 09:00)`;
  if (fields.length !== 5) return `cron "${pattern}" has ${fields.length} fields; routines use exactly five: minute hour day-of-month month day-of-week (e.g. "30 8 * * 1-5")`;
  const bad = fields.findIndex((f) => !FIELD.test(f));
  if (bad >= 0) return `cron "${pattern}": the ${NAMES[bad]} field "${fields[bad]}" has characters cron does not use`;
  try {
    const next = getNextMillis(Date.now(), { pattern: fields.join(' '), tz });
    if (typeof next !== 'number' || Number.isNaN(next)) return `cron "${pattern}" never fires`;
  } catch (err) {
    return `cron "${pattern}" is not valid: ${(err as Error).message}`;
  }
  return undefined;
}

/** The next `count` instants (ms) a valid pattern fires after `from`, in `tz`. */
export function nextCronRuns(pattern: string, tz: string, from: number, count = 1): number[] {
  const out: number[] = [];
  let t = from;
  for (let i = 0; i < count; i++) {
    const next = getNextMillis(t, { pattern, tz });
    if (typeof next !== 'number') break;
    out.push(next);
    t = next;
  }
  return out;
}
