import { EgressDeniedError, type EgressRequest } from '../sandbox/egress.js';
import { MIN_SECRET_LENGTH } from './leak.js';
import { HANDLE_RE, handleFor, isChannelSecret, parseHeaderTemplate, policyAllowsUrl, type SecretPolicy } from './policy.js';

/*
 * Substitutes `{{secret:NAME}}` handles in one outbound request (one redirect hop), only where the
 * secret's policy allows: the run must hold the handle, the method and destination must match, and
 * the handle must sit in a listed header (whole, or in the template's shape), as the whole value of
 * a listed query parameter, or in the body when the policy allows the body. Anything else is
 * refused with a message that names the secret and what its policy allows — never the value.
 */

export type SecretLookup = (name: string) => Promise<{ value: string; policy: SecretPolicy } | undefined>;

export interface Injected {
  name: string;
  value: string;
}

type Placement = { kind: 'header'; header: string } | { kind: 'query'; param: string } | { kind: 'body' };

const HANDLE_START = '{{secret:';
const EXACT_HANDLE = /^\{\{secret:([A-Za-z][A-Za-z0-9_.-]{0,63})\}\}$/;

/** Percent-decoding that never throws: a malformed escape stays as written. */
export function safeDecode(s: string, plusIsSpace = false): string {
  const text = plusIsSpace ? s.replace(/\+/g, ' ') : s;
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

function handleNames(text: string): string[] {
  return [...text.matchAll(HANDLE_RE)].map((m) => m[1]!);
}

/** Every `{{secret:` in `text` must start a well-formed handle, so nothing half-written goes out. */
function checkWellFormed(text: string, where: string): void {
  const opened = text.split(HANDLE_START).length - 1;
  if (opened !== handleNames(text).length) {
    throw new EgressDeniedError(`${where} holds a malformed secret handle; write it exactly as {{secret:NAME}} (NAME: letters, digits, "_", "." or "-")`);
  }
}

/** What a policy allows, for refusal messages the model can act on. */
export function describePolicy(p: SecretPolicy): string {
  const places = [
    ...p.headers.map((h) => `header "${h}"`),
    ...p.query.map((q) => `query parameter "${q}"`),
    ...(p.body ? ['the body'] : []),
  ];
  return `hosts ${p.hosts.join(', ')}; methods ${p.methods.join(', ')}; placement ${places.join(', ') || 'none'}`;
}

/**
 * Returns the request to hand to the inner egress, with every handle replaced by its value, and the
 * secrets that were injected. Throws `EgressDeniedError` for any handle it may not substitute.
 */
export async function injectSecrets(req: EgressRequest, url: URL, lookup: SecretLookup): Promise<{ request: EgressRequest; injected: Injected[] }> {
  const granted = new Set(req.secrets ?? []);
  const origin = `${url.protocol}//${url.host}`;
  const resolved = new Map<string, { value: string; policy: SecretPolicy }>();

  const resolve = async (name: string, placement: Placement): Promise<{ value: string; policy: SecretPolicy }> => {
    // Granted first, so a run cannot probe which names exist in the vault.
    if (!granted.has(name)) {
      const list = granted.size ? [...granted].map(handleFor).join(', ') : 'none';
      throw new EgressDeniedError(`the secret ${name} is not granted to this run (handles granted: ${list}); ask the owner to add it to the agent's [capabilities].secrets`);
    }
    if (isChannelSecret(name)) throw new EgressDeniedError(`the secret ${name} is a channel credential: only the hub's own adapter uses it, never code`);
    let secret = resolved.get(name);
    if (!secret) {
      secret = await lookup(name);
      if (!secret) throw new EgressDeniedError(`there is no secret named ${name} in the vault; the owner can add it with \`bulwark secret add ${name}\``);
      if (secret.value.length < MIN_SECRET_LENGTH) {
        throw new EgressDeniedError(`the secret ${name} is shorter than ${MIN_SECRET_LENGTH} characters, so its echo could not be scrubbed from responses; it is never sent`);
      }
      resolved.set(name, secret);
    }
    const { policy } = secret;
    const allows = `its policy allows ${describePolicy(policy)}`;
    if (!policy.methods.includes(req.method as SecretPolicy['methods'][number])) {
      throw new EgressDeniedError(`the secret ${name} may not be sent with ${req.method}; ${allows}`);
    }
    if (!policyAllowsUrl(policy, url)) throw new EgressDeniedError(`the secret ${name} may not be sent to ${origin}; ${allows}`);
    if (placement.kind === 'query' && !policy.query.includes(placement.param)) {
      throw new EgressDeniedError(`the secret ${name} may not be placed in the query parameter "${placement.param}"; ${allows}`);
    }
    if (placement.kind === 'body' && !policy.body) throw new EgressDeniedError(`the secret ${name} may not be placed in the request body; ${allows}`);
    return secret;
  };

  // URL: handles only as the whole value of a query parameter; never in the host or path.
  const bare = new URL(url.href);
  bare.search = '';
  bare.hash = '';
  if (safeDecode(bare.href).includes(HANDLE_START) || safeDecode(url.hash).includes(HANDLE_START)) {
    throw new EgressDeniedError(`a secret handle may not appear in the URL's host, path or fragment (${origin}); put it where its policy allows (a listed header, query parameter or the body)`);
  }
  let search = url.search;
  if (safeDecode(search, true).includes(HANDLE_START)) {
    const parts: string[] = [];
    for (const part of search.slice(1).split('&')) {
      const eq = part.indexOf('=');
      const rawName = eq < 0 ? part : part.slice(0, eq);
      const name = safeDecode(rawName, true);
      const value = eq < 0 ? '' : safeDecode(part.slice(eq + 1), true);
      if (name.includes(HANDLE_START)) throw new EgressDeniedError('a secret handle may not be a query parameter\'s name; use it as the value of a parameter its policy lists');
      if (!value.includes(HANDLE_START)) {
        parts.push(part);
        continue;
      }
      const m = EXACT_HANDLE.exec(value);
      if (!m) throw new EgressDeniedError(`the query parameter "${name}" must be exactly one secret handle such as {{secret:NAME}}, with nothing around it`);
      const secret = await resolve(m[1]!, { kind: 'query', param: name });
      parts.push(`${rawName}=${encodeURIComponent(secret.value)}`);
    }
    search = `?${parts.join('&')}`;
  }

  // Headers: the handle alone (the policy's template is rendered) or the template's exact shape.
  const headers: Record<string, string> = Object.create(null);
  for (const [name, value] of Object.entries(req.headers)) {
    if (name.includes(HANDLE_START)) throw new EgressDeniedError('a secret handle may not be a header name');
    if (!value.includes(HANDLE_START)) {
      headers[name] = value;
      continue;
    }
    checkWellFormed(value, `the header "${name}"`);
    const names = handleNames(value);
    if (names.length !== 1) throw new EgressDeniedError(`the header "${name}" holds ${names.length} secret handles; a header carries one`);
    const secretName = names[0]!;
    const secret = await resolve(secretName, { kind: 'header', header: name });
    const templates = secret.policy.headers.map(parseHeaderTemplate).filter((t) => t.name === name);
    const handle = handleFor(secretName);
    const template = templates.find((t) => value === handle || value === `${t.prefix}${handle}${t.suffix}`);
    if (!template) {
      const allowedHere = templates.length
        ? `write it as "${templates.map((t) => `${t.prefix}${handle}${t.suffix}`).join('" or "')}" or just "${handle}"`
        : `its policy allows ${describePolicy(secret.policy)}`;
      throw new EgressDeniedError(`the secret ${secretName} may not be placed in the header "${name}" like that; ${allowedHere}`);
    }
    headers[name] = `${template.prefix}${secret.value}${template.suffix}`;
  }

  let body = req.body;
  if (body?.includes(HANDLE_START)) {
    checkWellFormed(body, 'the request body');
    for (const name of new Set(handleNames(body))) await resolve(name, { kind: 'body' });
    body = body.replace(HANDLE_RE, (_, name: string) => resolved.get(name)!.value);
  }

  const target = `${url.origin}${url.pathname}${search}`;
  const injected = [...resolved].map(([name, s]) => ({ name, value: s.value }));
  return { request: { ...req, url: target, headers, body }, injected };
}
