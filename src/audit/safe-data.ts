import { scanPatterns } from '../vault/patterns.js';
import { canonicalJson, type AuditData, type AuditValue } from './canonical.js';

/*
 * What may go into an audit entry: ids, sizes, hosts, methods, statuses. Never a secret value and
 * never a message body. The guard is structural (fields whose names say they hold content are
 * dropped) and textual (every string is scanned for credential formats and, when the hub passes one,
 * the vault's known secret values), so a caller's mistake costs a "[redacted]" marker, not a leak.
 */

/** Field names that hold content or credentials; such fields are dropped with their values. */
const CONTENT_FIELD = /(body|text|value|secret|token|passw|credential|cookie|authorization|content|prompt|apikey|api_key|private)/i;
/** ...unless the name says it is a count or a size (`bodyBytes`, `tokensIn`, `textChars`). */
const MEASURE_FIELD = /(bytes|chars|length|len|count|size|in|out)$/i;
const MEASURE_PREFIX = /^(tokens|bytes|chars)/i;

const MAX_STRING = 512;
const MAX_DEPTH = 6;
const MAX_KEYS = 64;

/** Whether a string holds a known secret value, in any encoding (the vault's leak detector). */
export type SecretFinder = (text: string) => boolean | Promise<boolean>;

function allowedField(name: string, value: unknown): boolean {
  if (!CONTENT_FIELD.test(name)) return true;
  // A measure of content is fine, the content is not: only numbers pass under such names.
  return typeof value === 'number' && (MEASURE_FIELD.test(name) || MEASURE_PREFIX.test(name));
}

function cleanString(s: string, stripped: string[], path: string): string {
  const out = s.length > MAX_STRING ? `${s.slice(0, MAX_STRING)}…[${s.length - MAX_STRING} more chars cut]` : s;
  // Scan the whole original (a credential may straddle the cut), then decide.
  const hits = scanPatterns(s);
  if (hits.length > 0) {
    stripped.push(`${path}:${hits[0]!.pattern}`);
    return `[redacted:${hits[0]!.pattern}]`;
  }
  return out;
}

function clean(value: unknown, stripped: string[], path: string, depth: number): AuditValue {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string') return cleanString(value, stripped, path);
  if (typeof value === 'number') return Number.isFinite(value) ? value : null;
  if (typeof value === 'boolean') return value;
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Date) return value.toISOString();
  if (depth >= MAX_DEPTH) return '[too deep]';
  if (Array.isArray(value)) return value.slice(0, MAX_KEYS).map((v, i) => clean(v, stripped, `${path}[${i}]`, depth + 1));
  if (typeof value === 'object') {
    const out: AuditData = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>).slice(0, MAX_KEYS)) {
      const where = path ? `${path}.${k}` : k;
      if (!allowedField(k, v)) {
        stripped.push(where);
        continue;
      }
      out[k] = clean(v, stripped, where, depth + 1);
    }
    return out;
  }
  return String(value).slice(0, MAX_STRING);
}

/**
 * Returns a copy of `data` that is safe to store: content-named fields dropped, credentials
 * redacted, long strings cut. `_stripped` lists what was removed (paths and pattern names, never
 * values), so a caller sending the wrong thing is visible in the log itself.
 */
export function safeAuditData(data: unknown): AuditData {
  const stripped: string[] = [];
  const cleaned = clean(data ?? {}, stripped, '', 0);
  const out: AuditData = cleaned !== null && typeof cleaned === 'object' && !Array.isArray(cleaned) ? cleaned : { scalar: cleaned };
  if (stripped.length > 0) out._stripped = stripped;
  return out;
}

/** A short free-form field (actor, subject) gets the same credential scan and a length cap. */
export function safeLabel(s: string | undefined): string | undefined {
  if (s === undefined) return undefined;
  return cleanString(s.slice(0, 200), [], 'label');
}

function strings(value: AuditValue, out: string[]): string[] {
  if (typeof value === 'string') out.push(value);
  else if (Array.isArray(value)) value.forEach((v) => strings(v, out));
  else if (value !== null && typeof value === 'object') Object.values(value).forEach((v) => strings(v, out));
  return out;
}

/**
 * Replaces every string that holds a known secret (checked after the structural pass). One probe
 * over all strings first: the common case, no secret, costs one detector pass per entry.
 */
export async function redactKnownSecrets<T extends AuditValue>(value: T, holdsSecret: SecretFinder): Promise<T> {
  if (!(await holdsSecret(strings(value, []).join('\n')))) return value;
  return redactEach(value, holdsSecret);
}

async function redactEach<T extends AuditValue>(value: T, holdsSecret: SecretFinder): Promise<T> {
  if (typeof value === 'string') return ((await holdsSecret(value)) ? '[redacted:secret]' : value) as T;
  if (Array.isArray(value)) return (await Promise.all(value.map((v) => redactEach(v, holdsSecret)))) as T;
  if (value !== null && typeof value === 'object') {
    const out: AuditData = {};
    for (const [k, v] of Object.entries(value)) out[k] = await redactEach(v, holdsSecret);
    return out as T;
  }
  return value;
}

export { canonicalJson };
