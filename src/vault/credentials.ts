import type { EgressRequest } from '../sandbox/egress.js';
import { scanPatterns } from './patterns.js';
import { safeDecode } from './inject.js';

/*
 * Credentials the guest wrote itself. The only credentials that may leave are vault values the
 * egress injected from handles; a token the model found in a page, a file or a chat message and
 * wrote into a request is refused, because a tricked model is exactly who would do that.
 */

const AUTH_HEADERS = new Set(['authorization', 'proxy-authorization']);

// Headers and query parameters whose whole purpose is to carry a credential.
const CREDENTIAL_HEADER = /^(cookie|(x-)?(api-?key|apikey|auth-?token|access-?token|private-?token|token|secret|password|passwd)|x-[a-z0-9-]*-(api-?key|token|secret))$/i;
const CREDENTIAL_PARAM = /^(api[-_.]?key|apikey|(access|auth|refresh|id|private|bearer)[-_.]?token|token|client[-_.]?secret|secret|password|passwd)$/i;

/**
 * True for a value shaped like a random token: long, one word, several character classes. Only
 * asked about values in credential-carrying places, where ordinary words are rare.
 */
export function looksLikeToken(value: string): boolean {
  if (value.length < 16 || !/^[A-Za-z0-9._~+/=-]+$/.test(value)) return false;
  const classes = [/[a-z]/, /[A-Z]/, /[0-9]/].filter((re) => re.test(value)).length;
  return classes >= 2 && new Set(value).size >= 10;
}

function credentialIn(value: string): string | undefined {
  const hit = scanPatterns(value)[0];
  if (hit) return `a ${hit.pattern}`;
  // A header value may be "Scheme token" or a cookie list "a=b; c=d": look at each piece.
  for (const piece of value.split(/[;,\s]+/)) {
    const token = piece.includes('=') && !piece.endsWith('=') ? piece.slice(piece.indexOf('=') + 1) : piece;
    if (looksLikeToken(token)) return 'a token';
  }
  return undefined;
}

/**
 * Why this guest-written request carries a raw credential, or undefined. Runs before handles are
 * substituted, so a value that came from a handle is never mistaken for one the guest wrote.
 */
export function rawCredential(req: EgressRequest, url: URL): string | undefined {
  const hint = 'credentials must come from the vault: use a granted handle such as {{secret:NAME}} where its policy allows';
  for (const [name, value] of Object.entries(req.headers)) {
    if (value.includes('{{secret:')) continue;
    if (AUTH_HEADERS.has(name)) return `the header "${name}" was written by the code, not built from a secret handle; ${hint}`;
    if (CREDENTIAL_HEADER.test(name)) {
      const what = credentialIn(value);
      if (what) return `the header "${name}" carries ${what} written by the code; ${hint}`;
    }
  }
  for (const part of url.search.slice(1).split('&')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const name = safeDecode(part.slice(0, eq), true);
    const value = safeDecode(part.slice(eq + 1), true);
    if (!CREDENTIAL_PARAM.test(name) || value.includes('{{secret:')) continue;
    const what = credentialIn(value);
    if (what) return `the query parameter "${name}" carries ${what} written by the code; ${hint}`;
  }
  return undefined;
}
