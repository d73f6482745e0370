import { z } from 'zod';
import { EgressDeniedError, FORBIDDEN_REQUEST_HEADERS, type Egress, type EgressResponse } from './egress.js';
import { HostCallError, type HostFunction } from './host-calls.js';
import { fetchFollowingRedirects } from './redirects.js';
import { SandboxBreach, type JsonValue } from './result.js';

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$/;
// A header value must not smuggle a second header or request line.
const HEADER_VALUE = /^[^\r\n\0]{0,8192}$/;

const initSchema = z.object({
  method: z.string().transform((m) => m.toUpperCase()).pipe(z.enum(METHODS)).optional(),
  headers: z.record(z.string().regex(HEADER_NAME, 'not a valid header name'), z.string().regex(HEADER_VALUE, 'header values are single-line strings')).optional(),
  body: z.string().optional(),
}).strict();

type FetchArgs = [string, z.infer<typeof initSchema> | null | undefined];

const argsSchema: z.ZodType<FetchArgs> = z.tuple([z.string().min(1).max(8192), initSchema.nullish()]) as unknown as z.ZodType<FetchArgs>;

/**
 * `tools.http.fetch(url, {method, headers, body})` → `{url, status, headers, body, truncated}`.
 * Granted when the run's http grant is non-empty; each request (and each redirect hop) must
 * match it. A policy refusal ends the run as a `capability` error; a network failure is an
 * ordinary Error the guest may catch.
 */
export function createHttpFetchFunction(egress: Egress): HostFunction<FetchArgs> {
  return {
    name: 'http.fetch',
    args: argsSchema,
    granted: (grant) => grant.http.length > 0,
    async call([url, init], ctx) {
      const method = init?.method ?? 'GET';
      const headers: Record<string, string> = Object.create(null);
      for (const [name, value] of Object.entries(init?.headers ?? {})) {
        const lower = name.toLowerCase();
        if (FORBIDDEN_REQUEST_HEADERS.has(lower)) throw new HostCallError(`header "${name}" may not be set by the guest`);
        headers[lower] = value;
      }
      if (init?.body !== undefined && (method === 'GET' || method === 'HEAD')) throw new HostCallError(`a ${method} request cannot have a body`);
      const request = {
        url, method, headers, body: init?.body,
        allow: ctx.grant.http,
        secrets: ctx.grant.secrets ?? [],
        maxResponseBytes: ctx.limits.hostCallBytes,
        timeoutMs: Math.max(1, ctx.deadline - Date.now()),
      };
      try {
        const res = await ctx.outbound(() => fetchFollowingRedirects(egress, request, ctx.signal, ctx.deadline));
        return fitResponse(res, ctx.limits.hostCallBytes);
      } catch (err) {
        if (err instanceof EgressDeniedError) throw new SandboxBreach('capability', err.message);
        if (err instanceof SandboxBreach || err instanceof HostCallError) throw err;
        throw new HostCallError(`fetch ${url.slice(0, 200)}: ${(err as Error).message}`);
      }
    },
  };
}

/**
 * Shapes the response for the guest and shrinks it to fit the host-call response cap: headers go
 * first if they alone are too big, then the body is cut (and marked truncated).
 */
export function fitResponse(res: EgressResponse, capBytes: number): JsonValue {
  const budget = capBytes - 256;
  let headers: Record<string, string> = { ...res.headers };
  if (Buffer.byteLength(JSON.stringify(headers)) > budget / 4) headers = {};
  let body = res.body;
  let truncated = res.truncated;
  for (let i = 0; i < 20; i++) {
    const out = { url: res.url, status: res.status, headers, body, truncated };
    const size = Buffer.byteLength(JSON.stringify(out));
    if (size <= budget) return out;
    body = body.slice(0, Math.max(0, Math.floor(body.length * (budget / size)) - 64));
    truncated = true;
  }
  return { url: res.url.slice(0, 1000), status: res.status, headers: {}, body: '', truncated: true };
}
