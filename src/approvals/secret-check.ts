import { parseHttpGrant } from '../sandbox/grant.js';
import { policyAllowsUrl } from '../vault/policy.js';
import type { SecretSource } from '../vault/source.js';
import type { SecretHostCheck } from './gateway.js';

/** The built-in rule's check, over the vault: is `host` in the secret's own policy? The value is never read out. */
export function secretHostCheck(source: SecretSource): SecretHostCheck {
  return async (secret, host) => {
    const s = await source.get(secret);
    if (!s) return 'unknown_secret';
    const e = parseHttpGrant(host);
    const authority = e.host.includes(':') && !e.host.startsWith('[') ? `[${e.host}]` : e.host;
    return policyAllowsUrl(s.policy, new URL(`${e.scheme}://${authority}:${e.port}/`)) ? 'allowed' : 'not_in_policy';
  };
}
