import type { CapabilityGrant } from '../sandbox/grant.js';

/** What the owner approved for an agent, on top of its manifest. */
export interface ApprovedGrants { http: string[]; secrets: string[] }

/** The manifest's grant plus the approved hosts and secrets (duplicates dropped). */
export function mergeApprovedGrants(grant: CapabilityGrant, approved: ApprovedGrants): CapabilityGrant {
  if (approved.http.length === 0 && approved.secrets.length === 0) return grant;
  const secrets = [...new Set([...(grant.secrets ?? []), ...approved.secrets])];
  return { ...grant, http: [...new Set([...grant.http, ...approved.http])], ...(secrets.length ? { secrets } : {}) };
}
