import { z } from 'zod';
import { parseHttpGrant, SECRET_NAME } from '../sandbox/grant.js';
import { CHANNEL_NAME } from '../channels/contract.js';

/*
 * A change request: who asked, exactly what would change (a structured diff per kind), why (the
 * requester's own words), and until when it may be decided.
 */

export const CHANGE_KINDS = ['grant_host', 'grant_secret', 'create_routine', 'install_skill', 'new_recipient'] as const;
export type ChangeKind = (typeof CHANGE_KINDS)[number];

export const STATES = ['pending', 'approved', 'denied', 'expired', 'applied', 'failed'] as const;
export type ApprovalState = (typeof STATES)[number];

/** The one agent the hub runs today; requests and grants carry the name so more can follow. */
export const DEFAULT_AGENT = 'default';

const host = z.string().min(1).max(300).superRefine((h, ctx) => {
  try { parseHttpGrant(h); } catch (err) { ctx.addIssue({ code: 'custom', message: (err as Error).message }); }
}).transform((h) => h.toLowerCase());
const name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'must be letters, digits, "_", "." or "-" (at most 64)');

/** The exact change, per kind. What the owner sees and what is applied. */
export const diffSchemas = {
  grant_host: z.strictObject({ host }),
  grant_secret: z.strictObject({ secret: z.string().regex(SECRET_NAME, 'must be a vault secret name such as GITHUB_TOKEN'), host }),
  create_routine: z.strictObject({ name, trigger: z.string().min(1).max(200), instructions: z.string().min(1).max(4000) }),
  install_skill: z.strictObject({ skill: name, manifest: z.string().min(1).max(16_000) }),
  new_recipient: z.strictObject({ channel: z.string().regex(CHANNEL_NAME, 'must be a channel name such as telegram'), recipient: z.string().min(1).max(200) }),
} as const;

export type ChangeDiff = { [K in ChangeKind]: z.infer<(typeof diffSchemas)[K]> };

/** The string rules match on (`target` in approvals.toml): the host, secret, routine, skill or recipient. */
export function targetOf(kind: ChangeKind, diff: Record<string, unknown>): string {
  switch (kind) {
    case 'grant_host': return String(diff.host);
    case 'grant_secret': return String(diff.secret);
    case 'create_routine': return String(diff.name);
    case 'install_skill': return String(diff.skill);
    case 'new_recipient': return `${String(diff.channel)}:${String(diff.recipient)}`;
  }
}

/** One line a human can read: what would change. */
export function describeChange(kind: ChangeKind, diff: Record<string, unknown>, agent: string): string {
  switch (kind) {
    case 'grant_host': return `let agent "${agent}" reach ${String(diff.host)} from its sandbox`;
    case 'grant_secret': return `let agent "${agent}" use secret ${String(diff.secret)} (sent only to ${String(diff.host)})`;
    case 'create_routine': return `create routine "${String(diff.name)}" (${String(diff.trigger)})`;
    case 'install_skill': return `install skill "${String(diff.skill)}" with the manifest shown`;
    case 'new_recipient': return `let agent "${agent}" send to ${String(diff.channel)}:${String(diff.recipient)}`;
  }
}

export interface Requester {
  kind: 'agent' | 'person';
  /** The agent's name, or the person's id (`owner`, `telegram:12345`). */
  id: string;
  /** The conversation whose agent asked. */
  conversationId?: string | undefined;
}

export interface ApprovalRequest {
  id: string;
  requester: Requester;
  kind: ChangeKind;
  agent: string;
  target: string;
  diff: Record<string, unknown>;
  /** The requester's words, verbatim: shown as the requester's, never as the system's. */
  reason: string;
  state: ApprovalState;
  /** Which rule decided before a human did, if one did. */
  policy: string | null;
  decidedBy: string | null;
  decidedAt: Date | null;
  error: string | null;
  expiresAt: Date;
  appliedAt: Date | null;
  createdAt: Date;
}

/** Who is deciding, as the channel authenticated them (never as a message's text claims). */
export interface Decider {
  /** `api`, `web`, `cli`, `telegram`, … */
  channel: string;
  senderId: string;
  isOwner: boolean;
  /** The conversation the decision came from (chat decisions). */
  conversationId?: string | undefined;
  /** True when that conversation is a direct chat with the owner. */
  ownerDm?: boolean | undefined;
}

export type Decision = 'approve' | 'deny';
