/*
 * Wall-clock arithmetic in IANA time zones with nothing but Intl: what a routine's "day", "active
 * hours" and "09:00 on 1 December" mean for its owner. No function here falls back to UTC on its own;
 * callers pass the zone they mean.
 */

export interface LocalParts { year: number; month: number; day: number; hour: number; minute: number; second: number; weekday: number }

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(tz: string): Intl.DateTimeFormat {
  let f = formatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone: tz, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric', weekday: 'short' });
    formatters.set(tz, f);
  }
  return f;
}

const WEEKDAYS: Record<string, number> = { Sun: 0, Mon: 1, Tue: 2, Wed: 3, Thu: 4, Fri: 5, Sat: 6 };

/** True when Intl knows the zone. Offsets such as "+02:00" are refused: they ignore daylight saving. */
export function isTimeZone(tz: string): boolean {
  if (/^[+-]\d/.test(tz)) return false;
  try { formatter(tz); return true; } catch { return false; }
}

/** The wall clock in `tz` at instant `ms`. */
export function localParts(ms: number, tz: string): LocalParts {
  const parts: Record<string, string> = {};
  for (const p of formatter(tz).formatToParts(new Date(ms))) parts[p.type] = p.value;
  return {
    year: Number(parts.year), month: Number(parts.month), day: Number(parts.day),
    hour: Number(parts.hour), minute: Number(parts.minute), second: Number(parts.second), weekday: WEEKDAYS[parts.weekday!] ?? 0,
  };
}

/** Offset of `tz` from UTC at instant `ms`, in ms (positive east of Greenwich). */
export function zoneOffsetMs(ms: number, tz: string): number {
  const p = localParts(ms, tz);
  const asUtc = Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second);
  return asUtc - Math.floor(ms / 1000) * 1000;
}

/**
 * The instant a wall-clock time in `tz` names. A time that does not exist (skipped by a
 * spring-forward change) moves forward by the gap, as clocks do: 02:30 becomes 03:30. A time that
 * exists twice (fall back) means its first occurrence.
 */
export function zonedTimeToMs(t: { year: number; month: number; day: number; hour: number; minute: number; second?: number }, tz: string): number {
  const wall = Date.UTC(t.year, t.month - 1, t.day, t.hour, t.minute, t.second ?? 0);
  // Try the offsets in force a day either side; of the instants that really show this wall time, the earliest wins.
  const candidates = [zoneOffsetMs(wall - 86_400_000, tz), zoneOffsetMs(wall + 86_400_000, tz)]
    .map((off) => wall - off)
    .filter((ms) => zoneOffsetMs(ms, tz) === wall - ms)
    .sort((a, b) => a - b);
  if (candidates.length > 0) return candidates[0]!;
  // In the gap: use the offset from before the change, which lands after it by the gap's length.
  return wall - zoneOffsetMs(wall - 86_400_000, tz);
}

/** Midnight that starts the local day containing `ms` in `tz`: where daily budgets reset. */
export function startOfLocalDay(ms: number, tz: string): number {
  const p = localParts(ms, tz);
  return zonedTimeToMs({ year: p.year, month: p.month, day: p.day, hour: 0, minute: 0 }, tz);
}

/** Parses "HH:MM-HH:MM" (or "always") into minutes of the day; the end may be 24:00. */
export function parseActiveHours(spec: string): { from: number; to: number } | 'always' {
  if (spec === 'always') return 'always';
  const m = /^(\d\d):(\d\d)-(\d\d):(\d\d)$/.exec(spec);
  if (!m) throw new Error(`active hours "${spec}" must look like 08:00-22:00`);
  const [h1, m1, h2, m2] = m.slice(1).map(Number) as [number, number, number, number];
  if (h1 > 23 || m1 > 59 || h2 > 24 || m2 > 59 || (h2 === 24 && m2 > 0)) throw new Error(`active hours "${spec}" is not a time range on a 24-hour clock`);
  return { from: h1 * 60 + m1, to: h2 * 60 + m2 };
}

/** Is `ms` inside the active hours (local time in `tz`)? A range like 22:00-06:00 wraps midnight. */
export function withinActiveHours(ms: number, spec: string, tz: string): boolean {
  const range = parseActiveHours(spec);
  if (range === 'always' || range.from === range.to) return true;
  const p = localParts(ms, tz);
  const now = p.hour * 60 + p.minute;
  return range.from < range.to ? now >= range.from && now < range.to : now >= range.from || now < range.to;
}

/**
 * Parses a one-shot time: ISO 8601 with Z or an offset is an instant; "YYYY-MM-DD HH:MM" (or with a
 * T) is a wall-clock time in `tz`, which is then required.
 */
export function parseRunAt(text: string, tz: string | undefined): number {
  const s = text.trim();
  if (/([zZ]|[+-]\d\d:?\d\d)$/.test(s)) {
    const ms = Date.parse(s);
    if (Number.isNaN(ms)) throw new Error(`"${text}" is not a date and time: use 2026-12-01T09:00+01:00 or "2026-12-01 09:00" with --tz`);
    return ms;
  }
  const m = /^(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d)(?::(\d\d))?$/.exec(s);
  if (!m) throw new Error(`"${text}" is not a date and time: use "2026-12-01 09:00" (with --tz or routines.timezone) or an ISO time with an offset`);
  if (!tz) throw new Error(`"${text}" has no UTC offset, so it needs a time zone: pass --tz Europe/Berlin (or set routines.timezone), or write the offset (2026-12-01T09:00+01:00)`);
  const [year, month, day, hour, minute, second] = m.slice(1).map((x) => Number(x ?? 0)) as [number, number, number, number, number, number];
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59) throw new Error(`"${text}" is not a valid date and time`);
  return zonedTimeToMs({ year, month, day, hour, minute, second }, tz);
}

/** "2026-11-22 09:30 Europe/Berlin": how times are shown to people. */
export function formatLocal(ms: number, tz: string): string {
  const p = localParts(ms, tz);
  const two = (n: number) => String(n).padStart(2, '0');
  return `${p.year}-${two(p.month)}-${two(p.day)} ${two(p.hour)}:${two(p.minute)} ${tz}`;
}
