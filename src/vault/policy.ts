import { z } from 'zod';
import { parseHttpGrant } from '../sandbox/grant.js';

/*
 * Where a secret may go. A policy is plain data stored beside the ciphertext and bound to it (it is
 * part of the encryption's associated data), so editing a policy in the database breaks decryption.
 */

export const SECRET_NAME = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;
export const secretNameSchema = z.string().regex(SECRET_NAME, 'must start with a letter and hold only letters, digits, "_", "." or "-" (at most 64)');

/**
 * Channel credentials (`telegram.token`, `slack.bot_token`, …) are read by the hub's own adapters and
 * never by the agent: they have no destinations or placements, so the egress can never inject them.
 */
export const CHANNEL_SECRET = /^(telegram|slack|discord|whatsapp)\./;
export const isChannelSecret = (name: string): boolean => CHANNEL_SECRET.test(name);

/** The one way the guest names a secret. Anything else that looks like a credential is refused. */
export const HANDLE_RE = /\{\{secret:([A-Za-z][A-Za-z0-9_.-]{0,63})\}\}/g;
export const handleFor = (name: string): string => `{{secret:${name}}}`;

export const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;

function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/**
 * A destination host: `api.github.com`, `api.example.com:8443`, `*.example.com` (subdomains only,
 * and only because it is written out), or `http://127.0.0.1:8080` — plain http only for a loopback
 * host named with its port.
 */
const hostEntry = z.string().min(1).max(300).superRefine((raw, ctx) => {
  const wildcard = raw.startsWith('*.');
  try {
    const parsed = parseHttpGrant(wildcard ? raw.slice(2) : raw);
    if (parsed.scheme === 'http' && !(isLoopbackHost(parsed.host) && parsed.explicitPort)) {
      ctx.addIssue({ code: 'custom', message: `"${raw}": plain http is only allowed for a loopback host with its port (e.g. http://127.0.0.1:8080); use https` });
    }
    if (wildcard && parsed.scheme === 'http') ctx.addIssue({ code: 'custom', message: `"${raw}": a wildcard host must use https` });
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message.replace(/http grant/, 'host') });
  }
});

const headerTemplate = z.string().max(300).superRefine((raw, ctx) => {
  const m = /^([A-Za-z0-9!#$%&'*+.^_`|~-]+):\s*(.*)$/.exec(raw);
  if (!m) return ctx.addIssue({ code: 'custom', message: `header template "${raw}" must look like "Name: template {value}"` });
  if ((m[2]!.match(/\{value\}/g) ?? []).length !== 1) ctx.addIssue({ code: 'custom', message: `header template "${raw}" must contain {value} exactly once` });
});

export const secretPolicySchema = z.strictObject({
  /** Empty only for channel credentials, which the hub uses itself (see CHANNEL_SECRET). */
  hosts: z.array(hostEntry).max(32).default([]),
  /** Headers the value may be placed in, each `Name: template {value}`. */
  headers: z.array(headerTemplate).max(8).default([]),
  /** Query parameters the value may be placed in. */
  query: z.array(z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'query parameter names are letters, digits, "_", "." or "-"')).max(8).default([]),
  /** Whether the value may be placed in the request body. */
  body: z.boolean().default(false),
  methods: z.array(z.enum(HTTP_METHODS)).min(1).max(HTTP_METHODS.length).default(['GET', 'POST']),
});

/** The rules a policy must meet for a secret the egress may inject (everything but channel credentials). */
export function checkEgressPolicy(name: string, p: SecretPolicy): string | undefined {
  if (isChannelSecret(name)) {
    return p.hosts.length + p.headers.length + p.query.length > 0 || p.body
      ? `${name} is a channel credential: the hub's adapter uses it and the agent never can, so it takes no --host, --header, --query or --body`
      : undefined;
  }
  if (p.hosts.length === 0) return 'name at least one destination host (--host)';
  if (p.headers.length + p.query.length === 0 && !p.body) return 'say where the value may go: at least one --header, --query or --body';
  return undefined;
}

export type SecretPolicy = z.infer<typeof secretPolicySchema>;

export interface HeaderPlacement { name: string; prefix: string; suffix: string }

/** Splits `Authorization: Bearer {value}` into the header name (lower-case) and what surrounds the value. */
export function parseHeaderTemplate(template: string): HeaderPlacement {
  const m = /^([^:]+):\s*(.*)$/.exec(template)!;
  const [prefix, suffix] = m[2]!.split('{value}') as [string, string];
  return { name: m[1]!.trim().toLowerCase(), prefix, suffix };
}

/** Whether the policy names this URL's destination (scheme, host and port). */
export function policyAllowsUrl(policy: SecretPolicy, url: URL): boolean {
  const scheme = url.protocol === 'https:' ? 'https' : url.protocol === 'http:' ? 'http' : undefined;
  if (!scheme) return false;
  const port = url.port ? Number(url.port) : scheme === 'https' ? 443 : 80;
  const host = url.hostname.toLowerCase();
  return policy.hosts.some((raw) => {
    const wildcard = raw.startsWith('*.');
    const e = parseHttpGrant(wildcard ? raw.slice(2) : raw);
    if (e.scheme !== scheme || e.port !== port) return false;
    return wildcard ? host.endsWith(`.${e.host}`) : host === e.host;
  });
}

/** Canonical JSON of a policy (sorted keys), the form bound into the ciphertext's associated data. */
export function canonicalPolicy(policy: SecretPolicy): string {
  const sorted = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(sorted);
    if (v && typeof v === 'object') return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sorted((v as Record<string, unknown>)[k])]));
    return v;
  };
  return JSON.stringify(sorted(policy));
}
