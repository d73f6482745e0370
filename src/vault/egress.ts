import { checkDestination, EgressDeniedError, type Egress, type EgressRequest, type EgressResponse } from '../sandbox/egress.js';
import { rawCredential } from './credentials.js';
import { injectSecrets, type Injected } from './inject.js';
import { vaultDetector } from './guard.js';
import { LeakDetector } from './leak.js';
import { HANDLE_RE } from './policy.js';
import type { SecretSource } from './source.js';

/*
 * The only door out. The sandbox hands every request (every redirect hop) to this egress with
 * handles, never values; it checks the guest-written request for smuggled secrets and raw
 * credentials, substitutes handles where each secret's policy allows, lets the inner policy egress
 * pin DNS and connect, and scrubs any injected value out of what comes back.
 */

/** One egress decision, for the audit log and metrics. Never holds a secret's value. */
export interface EgressEvent {
  kind: 'request' | 'refused' | 'leak_blocked' | 'response_scrubbed';
  /** host[:port] of the destination. */
  host: string;
  method: string;
  status?: number;
  /** Response body length in bytes (after scrubbing). */
  bytes?: number;
  /** Names of the secrets involved: injected, found smuggled, or scrubbed from the response. */
  secrets: string[];
  reason?: string;
}

export interface VaultEgressOptions {
  /**
   * Called for every request, refusal and scrub (the hub writes the audit log and counts
   * `bulwark_leaks_total`). A returned promise is awaited before the guest sees the outcome, so the
   * record is committed before the code that asked can act on the answer.
   */
  onEvent?: (e: EgressEvent) => unknown;
}

/**
 * Wraps `inner` (normally `createPolicyEgress()`, which checks the grant and pins DNS) so that
 * secret handles become values only on the way to a destination their policy names.
 */
export function createVaultEgress(inner: Egress, source: SecretSource, opts: VaultEgressOptions = {}): Egress {
  const detectorOfVault = vaultDetector(source, []);
  const emit = async (e: EgressEvent): Promise<void> => {
    try {
      await opts.onEvent?.(e);
    } catch {
      // An audit sink that throws must not turn into a network failure the guest can observe.
    }
  };

  return {
    async fetch(req, signal) {
      let where = { host: '?', method: req.method };
      const refuse = async (kind: 'refused' | 'leak_blocked', reason: string, secrets: string[] = []): Promise<never> => {
        await emit({ kind, ...where, secrets, reason });
        throw new EgressDeniedError(reason);
      };
      let url: URL;
      try {
        url = checkDestination(req.url, req.allow).url;
      } catch (err) {
        return refuse('refused', (err as Error).message);
      }
      where = { host: url.host, method: req.method };

      let detector: LeakDetector;
      try {
        detector = await detectorOfVault();
      } catch (err) {
        // Fail closed: without the vault's values no request can be checked for smuggled secrets.
        await emit({ kind: 'refused', ...where, secrets: [], reason: `vault unreadable: ${(err as Error).message}` });
        throw new Error(`the vault could not be read, so no request can be checked for leaks (${(err as Error).message}); ask the owner to run \`bulwark doctor\``);
      }
      const smuggled = findSmuggled(detector, req);
      if (smuggled) return refuse('leak_blocked', smuggled.reason, smuggled.secrets);
      const raw = rawCredential(req, url);
      if (raw) return refuse('leak_blocked', raw);

      let prepared: { request: EgressRequest; injected: Injected[] };
      try {
        prepared = await injectSecrets(req, url, (name) => source.get(name));
      } catch (err) {
        if (err instanceof EgressDeniedError) return refuse('refused', err.message, mentioned(req));
        await emit({ kind: 'refused', ...where, secrets: mentioned(req), reason: `vault error: ${(err as Error).message}` });
        throw err;
      }
      const names = prepared.injected.map((s) => s.name);
      const scrubber = prepared.injected.length ? new LeakDetector(prepared.injected) : undefined;

      let res: EgressResponse;
      try {
        res = await inner.fetch(prepared.request, signal);
      } catch (err) {
        const message = scrubber ? scrubber.redact((err as Error).message).redacted : (err as Error).message;
        if (err instanceof EgressDeniedError) return refuse('refused', message, names);
        await emit({ kind: 'request', ...where, secrets: names, reason: message });
        throw new Error(message);
      }
      // The inner egress reports the URL it requested, which holds any injected query value.
      res = { ...res, url: url.href };
      const found = new Set<string>();
      if (scrubber) {
        const echoed = scrub(res, scrubber, prepared.injected);
        res = echoed.response;
        for (const name of echoed.found) found.add(name);
      }
      // Any other vault value a server hands out (a settings page showing an API key) is kept from the guest too.
      const other = scrub(res, detector, [], true);
      res = other.response;
      for (const name of other.found) found.add(name);
      if (found.size) await emit({ kind: 'response_scrubbed', ...where, status: res.status, secrets: [...found] });
      await emit({ kind: 'request', ...where, status: res.status, bytes: Buffer.byteLength(res.body), secrets: names });
      return res;
    },
  };
}

/** Whether an event means a secret or credential was stopped (for `bulwark_leaks_total{place="egress"}`). */
export function isLeakEvent(e: EgressEvent): boolean {
  return e.kind === 'leak_blocked' || e.kind === 'response_scrubbed';
}

/** Handle names written anywhere in the request, for the audit record of a refusal. */
function mentioned(req: EgressRequest): string[] {
  const text = [req.url, ...Object.entries(req.headers).flat(), req.body ?? ''].join('\n');
  return [...new Set([...text.matchAll(HANDLE_RE)].map((m) => m[1]!))];
}

/**
 * A vault secret's value (in any encoding the detector knows) or a well-known credential format in
 * the request the guest wrote. Injected values are not there yet: they are added after this check.
 */
function findSmuggled(detector: LeakDetector, req: EgressRequest): { reason: string; secrets: string[] } | undefined {
  const places: Array<[string, string]> = [
    ['URL', req.url],
    ...Object.entries(req.headers).map(([k, v]): [string, string] => [`header "${k.slice(0, 64)}"`, `${k}: ${v}`]),
    ['body', req.body ?? ''],
  ];
  for (const [place, text] of places) {
    const findings = detector.scan(text);
    const secrets = [...new Set(findings.flatMap((f) => (f.secret ? [f.secret] : [])))];
    if (secrets.length) {
      const enc = findings.find((f) => f.secret)?.encoding ?? 'raw';
      return {
        secrets,
        reason: `the request's ${place} carries the value of a vault secret (${enc === 'raw' ? 'as is' : `encoded: ${enc}`}); secret values never leave as written — use the handle {{secret:NAME}} where its policy allows`,
      };
    }
    const pattern = findings.find((f) => f.pattern);
    if (pattern) {
      return {
        secrets: [],
        reason: `the request's ${place} carries a credential (${pattern.pattern}) written by the code; credentials must come from the vault as handles such as {{secret:NAME}}`,
      };
    }
  }
  return undefined;
}

/**
 * The response with every secret the detector knows (in any encoding, and credential formats)
 * redacted. A body cut at the size cap may end inside an echoed injected value, where no detector
 * can recognise the piece; the tail that could hold such a piece is dropped. With `onlyWithSecrets`
 * a text is rewritten only when it holds a secret, so ordinary pages that merely show a credential
 * format (documentation, examples) come back as they were.
 */
function scrub(res: EgressResponse, detector: LeakDetector, injected: Injected[], onlyWithSecrets = false): { response: EgressResponse; found: string[] } {
  const found = new Set<string>();
  const clean = (text: string): string => {
    if (onlyWithSecrets && !detector.scan(text).some((f) => f.secret)) return text;
    const { redacted, findings } = detector.redact(text);
    for (const f of findings) if (f.secret) found.add(f.secret);
    return redacted;
  };
  let body = res.body;
  if (res.truncated && injected.length) {
    const longest = Math.max(...injected.map((s) => Buffer.byteLength(s.value))) * 3;
    body = body.slice(0, Math.max(0, body.length - longest));
  }
  const headers: Record<string, string> = Object.create(null);
  for (const [name, value] of Object.entries(res.headers)) {
    // Header names arrive lower-cased, which the detector's case-sensitive forms would miss.
    const inName = [...detector.scan(name).flatMap((f) => (f.secret ? [f.secret] : [])), ...injected.filter((s) => name.includes(s.value.toLowerCase())).map((s) => s.name)];
    if (inName.length) {
      for (const secret of inName) found.add(secret);
      continue;
    }
    headers[name] = clean(value);
  }
  return { response: { ...res, headers, body: clean(body) }, found: [...found] };
}
