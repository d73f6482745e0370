import { z } from 'zod';

/**
 * What one run may do beyond pure computation. The guest sees only the granted parts of the host
 * API; the host re-checks the grant on every call. Plain data, so it can come from a manifest.
 */
export interface CapabilityGrant {
  /**
   * Destinations `tools.http.fetch` may reach, each `host`, `host:port`, or `http://host:port`.
   * https is the default; plain http only when the entry says `http://`. Empty: no network.
   */
  http: readonly string[];
  /** Registered host functions the guest may call, by dotted name (e.g. `memory.search`). */
  tools: readonly string[];
  /**
   * Vault secrets whose handles (`{{secret:NAME}}`) the run may use in `tools.http.fetch`. Only
   * names: the sandbox never sees a value. Absent means none.
   */
  secrets?: readonly string[];
}

/** The conservative default: computation only, no network, no tools. */
export const NO_CAPABILITIES: Readonly<CapabilityGrant> = Object.freeze({ http: Object.freeze([]), tools: Object.freeze([]) });

/** One parsed `http` grant entry. */
export interface HttpGrantEntry {
  scheme: 'http' | 'https';
  /** Lower-case host name or IP literal as WHATWG URL spells it (IPv6 in brackets). */
  host: string;
  port: number;
  /**
   * True when the entry names the port itself. Only such entries may reach private, loopback or
   * link-local addresses: reaching inside the owner's network must be spelled out exactly.
   */
  explicitPort: boolean;
}

/** A secret's name as the vault spells it (must equal the vault's SECRET_NAME; the sandbox does not import the vault). */
export const SECRET_NAME = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;

/** A granted tool's name: dotted, lower-case first letters, e.g. `memory.search`. */
export const TOOL_NAME = /^[a-z][a-zA-Z0-9_]{0,40}(\.[a-z][a-zA-Z0-9_]{0,40}){1,3}$/;

/**
 * Parses one http grant entry. Throws an Error that says what is wrong and what a valid entry
 * looks like, because these come from hand-written manifests.
 */
export function parseHttpGrant(entry: string): HttpGrantEntry {
  const fail = (why: string): never => {
    throw new Error(`http grant "${entry}" is invalid: ${why}; use "host", "host:port" or "http://host:port"`);
  };
  if (typeof entry !== 'string' || entry.length === 0 || entry.length > 300) fail('not a short string');
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(entry) && !/^https?:\/\//i.test(entry)) fail('scheme must be http or https');
  if (/[\s/?#@*\\]/.test(entry.replace(/^https?:\/\//i, ''))) fail('only a host and optional port are allowed (no path, wildcard or credentials)');
  const scheme = /^http:\/\//i.test(entry) ? 'http' : 'https';
  const withScheme = /^https?:\/\//i.test(entry) ? entry : `https://${entry}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    return fail('not a valid host');
  }
  const authority = withScheme.replace(/^https?:\/\//i, '');
  const explicitPort = /^(\[[^\]]+\]|[^:[\]]+):\d+$/.test(authority);
  const port = url.port ? Number(url.port) : scheme === 'https' ? 443 : 80;
  if (!url.hostname) fail('missing host');
  return { scheme, host: url.hostname.toLowerCase(), port, explicitPort };
}

/** The grant entry that allows `url`, if any: scheme, host and port must all match exactly. */
export function matchHttpGrant(entries: readonly HttpGrantEntry[], url: URL): HttpGrantEntry | undefined {
  const scheme = url.protocol === 'https:' ? 'https' : url.protocol === 'http:' ? 'http' : undefined;
  if (!scheme) return undefined;
  const port = url.port ? Number(url.port) : scheme === 'https' ? 443 : 80;
  const host = url.hostname.toLowerCase();
  return entries.find((e) => e.scheme === scheme && e.host === host && e.port === port);
}

const grantSchema = z.object({
  http: z.array(z.string()).max(256),
  tools: z.array(z.string().regex(TOOL_NAME, 'must be a dotted lower-case name such as "memory.search"')).max(256),
  secrets: z.array(z.string().regex(SECRET_NAME, 'must be a vault secret name such as "GITHUB_TOKEN"')).max(64).optional(),
}).strict();

/**
 * Validates a grant at the boundary (caller or manifest) and returns a frozen copy. Throws a
 * `TypeError` naming the bad entry.
 */
export function normalizeGrant(grant: CapabilityGrant | undefined): CapabilityGrant {
  const parsed = grantSchema.safeParse(grant ?? NO_CAPABILITIES);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new TypeError(`capability grant field "${issue?.path.join('.') ?? '?'}" is invalid: ${issue?.message ?? 'bad value'}`);
  }
  for (const entry of parsed.data.http) {
    try {
      parseHttpGrant(entry);
    } catch (err) {
      throw new TypeError((err as Error).message);
    }
  }
  const secrets = [...new Set(parsed.data.secrets ?? [])];
  return Object.freeze({
    http: Object.freeze([...new Set(parsed.data.http)]),
    tools: Object.freeze([...new Set(parsed.data.tools)]),
    // Left out when empty, so a grant without secrets looks exactly as it did before secrets existed.
    ...(secrets.length ? { secrets: Object.freeze(secrets) } : {}),
  });
}
