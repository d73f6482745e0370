import { isIP } from 'node:net';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { SESSION_COOKIE, tokensEqual } from './auth.js';

/*
 * Who may call which route, decided on the route the router matched, never on a string test of the
 * URL: the router decodes `/%61pi/status` into `/api/status`, so a prefix test on the raw URL was a
 * bypass. Every route declares its access in its options (`{ config: { access: 'public' } }`); a
 * route that declares nothing, and every URL that matches no route, needs the owner's credentials.
 * A new route that forgets to say what it is, is closed.
 *
 *  - public: anyone (health, the login exchange, the static page).
 *  - signed: the route authenticates the caller itself (platform webhooks with a signature); it is
 *    also exempt from the Host check, because platforms reach it through a proxy under its own name.
 *  - owner (the default): the API token as `Authorization: Bearer`, or a web session cookie; a write
 *    made with the cookie must come from our own page (Origin), which stops cross-site forgery.
 *  - token: the API token only (owner controls that a browser session should not reach).
 */

export const ACCESS = ['public', 'signed', 'owner', 'token'] as const;
export type Access = (typeof ACCESS)[number];
/** How an owner request proved itself: the API token (CLI) or a session cookie (web page). */
export type Caller = 'token' | 'session';

/** One route of the server and the access it declared (what the route-enumeration test walks). */
export interface RouteAccess { method: string; url: string; access: Access }

declare module 'fastify' {
  interface FastifyContextConfig { access?: Access }
  interface FastifyRequest { caller?: Caller }
  interface FastifyInstance { accessTable: readonly RouteAccess[] }
}

/** Route options for the routes that are not owner-only: `app.get('/healthz', route('public'), …)`. */
export const route = (access: Access) => ({ config: { access } });

export interface AccessOptions {
  /** The API token; without one (a worker's server), owner routes answer 401 to everyone. */
  apiToken?: string | undefined;
  sessions?: { valid(sid: string | undefined): Promise<boolean> } | undefined;
  /** Host names (beyond loopback names and IP literals) the hub answers to: server.allowed_hosts. */
  allowedHosts: readonly string[];
}

const LOOPBACK_NAMES = new Set(['localhost', 'localhost.', 'ip6-localhost']);
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
const UNAUTHORIZED = 'missing or invalid credentials: open the login link printed by `bulwark start` (or run `bulwark login`), or send Authorization: Bearer <token from BULWARK_HOME/api-token>';

/** The host name of a Host header (no port, no brackets, lower case), or undefined if malformed. */
export function hostName(header: string | undefined): string | undefined {
  if (!header || header.length > 255) return undefined;
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+))(?::(\d{1,5}))?$/.exec(header.trim());
  if (!m) return undefined;
  return (m[1] ?? m[2] ?? '').toLowerCase();
}

/**
 * Whether a Host header names this hub. IP literals always do: a DNS-rebinding page runs under the
 * attacker's name, so the browser sends that name, never an address. Names must be loopback names
 * or listed in server.allowed_hosts (a leading '.' allows subdomains).
 */
export function hostAllowed(header: string | undefined, allowed: readonly string[]): boolean {
  const name = hostName(header);
  if (!name) return false;
  if (isIP(name) !== 0 || LOOPBACK_NAMES.has(name)) return true;
  return allowed.some((a) => {
    const want = a.toLowerCase();
    return want.startsWith('.') ? name.endsWith(want) || name === want.slice(1) : name === want;
  });
}

function bearer(req: FastifyRequest): string | undefined {
  const h = req.headers.authorization;
  if (h === undefined) return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
  return m ? m[1] : '';
}

/** A cookie write is ours when the browser says it comes from this very origin. */
function sameOrigin(req: FastifyRequest): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return req.headers['sec-fetch-site'] === 'same-origin';
  // Host and port only: behind a TLS proxy the page is https while the hub itself sees http.
  try { return /^https?:$/.test(new URL(origin).protocol) && new URL(origin).host === req.headers.host; } catch { return false; }
}

/** Installs the one access check of the hub's HTTP server. Call before any route is served. */
export function installAccessControl(app: FastifyInstance, o: AccessOptions): void {
  const table: RouteAccess[] = [];
  app.decorate('accessTable', table);
  app.addHook('onRoute', (r) => {
    const access = (r.config as { access?: Access } | undefined)?.access ?? 'owner';
    for (const method of [r.method].flat()) if (method !== 'HEAD') table.push({ method, url: r.url, access });
  });
  const deny = (reply: FastifyReply, code: number, error: string) => reply.code(code).send({ error });
  app.addHook('onRequest', async (req, reply) => {
    const access: Access = req.routeOptions.config?.access ?? 'owner';
    if (access !== 'signed' && !hostAllowed(req.headers.host, o.allowedHosts)) {
      return deny(reply, 421, `this hub does not answer to the host "${(req.headers.host ?? '').slice(0, 100)}": add it to server.allowed_hosts (BULWARK_ALLOWED_HOSTS) if a reverse proxy forwards it`);
    }
    if (access === 'public' || access === 'signed') return;

    const token = bearer(req);
    if (token !== undefined) {
      // A wrong token is a refusal: it never falls back to the cookie.
      if (!o.apiToken || !tokensEqual(token, o.apiToken)) return deny(reply, 401, UNAUTHORIZED);
      req.caller = 'token';
      return;
    }
    if (access === 'token') return deny(reply, 401, 'this control needs Authorization: Bearer <token from BULWARK_HOME/api-token> (the bulwark CLI sends it)');
    if (!o.sessions || !(await o.sessions.valid(req.cookies?.[SESSION_COOKIE]))) return deny(reply, 401, UNAUTHORIZED);
    if (!SAFE_METHODS.has(req.method) && !sameOrigin(req)) {
      return deny(reply, 403, `cross-origin request${req.headers.origin ? ` from ${req.headers.origin.slice(0, 100)}` : ''} refused: a change made with the session cookie must come from the Bulwark page itself`);
    }
    req.caller = 'session';
  });
}
