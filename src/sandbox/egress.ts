import { isIP } from 'node:net';
import { Agent, fetch as undiciFetch } from 'undici';
import { matchHttpGrant, parseHttpGrant, type HttpGrantEntry } from './grant.js';
import { EgressDeniedError, findDenial, isPublicAddress, pinnedLookup } from './net-policy.js';

export { EgressDeniedError } from './net-policy.js';

/** One outbound HTTP request, as the sandbox hands it to the host. Redirects are never followed. */
export interface EgressRequest {
  url: string;
  method: string;
  /** Header name → value. Names are lower-case. */
  headers: Record<string, string>;
  body?: string;
  /** The run's http grant entries; the egress refuses any destination they do not name. */
  allow: readonly string[];
  /**
   * Names of the vault secrets whose handles (`{{secret:NAME}}`) this run may use. The sandbox
   * only passes names; the vault's egress substitutes values where each secret's policy allows.
   */
  secrets?: readonly string[];
  /** Body bytes beyond this are dropped and the response is marked `truncated`. */
  maxResponseBytes: number;
  timeoutMs: number;
}

export interface EgressResponse {
  url: string;
  status: number;
  headers: Record<string, string>;
  /** The body decoded as UTF-8 (invalid sequences become U+FFFD). */
  body: string;
  truncated: boolean;
}

/**
 * The seam between the sandbox and the network. The default implementation enforces the network
 * policy; the vault wraps it to substitute secret handles and check for leaks. Implementations
 * throw `EgressDeniedError` for policy refusals and any other Error for network failures.
 */
export interface Egress {
  fetch(req: EgressRequest, signal: AbortSignal): Promise<EgressResponse>;
}

/** Headers the guest may not set: they belong to the connection, not the request. */
export const FORBIDDEN_REQUEST_HEADERS: ReadonlySet<string> = new Set([
  'host', 'connection', 'content-length', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'keep-alive',
  'proxy-authorization', 'proxy-connection', 'expect', 'http2-settings',
]);

/** A grant entry as the origin it allows: "127.0.0.1:8080" is https://127.0.0.1:8080. */
const originOf = (e: HttpGrantEntry) => `${e.scheme}://${e.host}${e.port === (e.scheme === 'https' ? 443 : 80) ? '' : `:${e.port}`}`;

/**
 * Why a URL is refused, with the grants spelled as the origins they allow and the exact entry that
 * would allow it. A bare "host:port" grant means https, which reads like "any scheme": say so when
 * the refused URL differs from a grant only by its scheme.
 */
function notGranted(url: URL, allow: readonly string[], entries: readonly HttpGrantEntry[]): string {
  const origin = `${url.protocol}//${url.host}`;
  const granted = entries.length ? entries.map(originOf).join(', ') : 'nothing (no network)';
  const scheme = url.protocol === 'http:' ? 'http' : 'https';
  const port = url.port ? Number(url.port) : scheme === 'https' ? 443 : 80;
  const near = entries.findIndex((e) => e.host === url.hostname.toLowerCase() && e.port === port && e.scheme !== scheme);
  const wanted = scheme === 'http' ? `http://${url.host}` : url.host;
  const hint = near >= 0
    ? `: the grant "${allow[near]}" means ${originOf(entries[near]!)}; to reach ${origin} the grant must be "${wanted}"`
    : `; to allow it, the grant needs "${wanted}"`;
  return `${origin} is not in this run's http grant (granted: ${granted})${hint}`;
}

/**
 * Checks a URL against the grant before any connection: scheme, credentials, host, port, and for
 * IP literals (which never reach the DNS lookup) the private-address rule. Returns the entry.
 */
export function checkDestination(rawUrl: string, allow: readonly string[]): { url: URL; entry: HttpGrantEntry } {
  let url: URL;
  try {
    url = new URL(rawUrl);
  } catch {
    throw new EgressDeniedError(`"${rawUrl.slice(0, 200)}" is not an absolute URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new EgressDeniedError(`scheme ${url.protocol} is not allowed; only http(s)`);
  if (url.username || url.password) throw new EgressDeniedError('credentials in URLs are not allowed');
  const entries = allow.map(parseHttpGrant);
  const entry = matchHttpGrant(entries, url);
  if (!entry) throw new EgressDeniedError(notGranted(url, allow, entries));
  const literal = url.hostname.replace(/^\[|\]$/g, '');
  if (!entry.explicitPort && isIP(literal) !== 0 && !isPublicAddress(literal)) {
    throw new EgressDeniedError(`${literal} is a private, loopback or link-local address; only a grant that names the exact host and port may reach it`);
  }
  return { url, entry };
}

async function readCapped(body: ReadableStream<Uint8Array> | null, max: number): Promise<{ bytes: Buffer; truncated: boolean }> {
  if (!body) return { bytes: Buffer.alloc(0), truncated: false };
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return { bytes: Buffer.concat(chunks), truncated: false };
    if (total + value.byteLength > max) {
      chunks.push(value.subarray(0, max - total));
      await reader.cancel().catch(() => undefined);
      return { bytes: Buffer.concat(chunks), truncated: true };
    }
    chunks.push(value);
    total += value.byteLength;
  }
}

/**
 * The default egress: policy checks, then undici fetch over a one-request Agent whose DNS lookup
 * is pinned and checked. No proxy from the environment, no redirects, capped size and time.
 */
export function createPolicyEgress(): Egress {
  return {
    async fetch(req, signal) {
      const { url, entry } = checkDestination(req.url, req.allow);
      const agent = new Agent({
        connect: { lookup: pinnedLookup(entry.explicitPort, `${entry.scheme === 'http' ? 'http://' : ''}${entry.host}:${entry.port}`) },
        pipelining: 0,
      });
      const timeout = AbortSignal.timeout(req.timeoutMs);
      const headers: Array<[string, string]> = [];
      for (const [k, v] of Object.entries(req.headers)) if (!FORBIDDEN_REQUEST_HEADERS.has(k.toLowerCase())) headers.push([k, v]);
      try {
        const res = await undiciFetch(url, {
          method: req.method,
          headers,
          body: req.body,
          redirect: 'manual',
          dispatcher: agent,
          signal: AbortSignal.any([signal, timeout]),
        });
        const { bytes, truncated } = await readCapped(res.body, req.maxResponseBytes);
        const outHeaders: Record<string, string> = Object.create(null);
        res.headers.forEach((value, name) => { outHeaders[name] = value; });
        return { url: url.href, status: res.status, headers: outHeaders, body: new TextDecoder().decode(bytes), truncated };
      } catch (err) {
        const denial = findDenial(err);
        if (denial) throw denial;
        if (signal.aborted) throw signal.reason instanceof Error ? signal.reason : new Error('request aborted');
        if (timeout.aborted) throw new Error(`request to ${url.origin} timed out after ${req.timeoutMs} ms`);
        const cause = (err as { cause?: { code?: string; message?: string } }).cause;
        throw new Error(`request to ${url.origin} failed: ${cause?.code ?? cause?.message ?? (err as Error).message}`);
      } finally {
        agent.destroy().catch(() => undefined);
      }
    },
  };
}
