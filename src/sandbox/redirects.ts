import { checkDestination, type Egress, type EgressRequest, type EgressResponse } from './egress.js';

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

/** Hops a single guest request may take. */
export const MAX_REDIRECTS = 5;

/**
 * Follows redirects by hand so that every hop goes back through the egress, which re-checks the
 * destination against the grant (and, behind the vault, the secret policy). Crossing to another
 * origin drops all request headers, so nothing the vault injected for one host reaches another,
 * and a body is never re-sent across origins.
 */
export async function fetchFollowingRedirects(
  egress: Egress,
  req: EgressRequest,
  signal: AbortSignal,
  deadline: number,
): Promise<EgressResponse> {
  let current = req;
  for (let hop = 0; ; hop++) {
    // Checked here as well as in the egress, so a custom egress cannot forget the grant.
    checkDestination(current.url, current.allow);
    const timeoutMs = Math.max(1, Math.min(current.timeoutMs, deadline - Date.now()));
    const res = await egress.fetch({ ...current, timeoutMs }, signal);
    const location = res.headers.location;
    if (!REDIRECT_STATUSES.has(res.status) || !location) return res;
    if (hop >= MAX_REDIRECTS) throw new Error(`too many redirects (more than ${MAX_REDIRECTS}) starting at ${req.url}`);
    let next: URL;
    try {
      next = new URL(location, current.url);
    } catch {
      throw new Error(`redirect from ${current.url} to an invalid location`);
    }
    const sameOrigin = next.origin === new URL(current.url).origin;
    const toGet = res.status === 303 || ((res.status === 301 || res.status === 302) && current.method === 'POST');
    const body = toGet ? undefined : current.body;
    if (!sameOrigin && body !== undefined) {
      throw new Error(`refusing to re-send a request body to another origin (${next.origin}) on redirect`);
    }
    current = {
      ...current,
      url: next.href,
      method: toGet && current.method !== 'HEAD' ? 'GET' : current.method,
      body,
      headers: sameOrigin ? current.headers : {},
    };
  }
}
