import { z } from 'zod';
import type { AgentTool } from '../agent/tools.js';
import { RequestError, type ApprovalGateway } from './gateway.js';
import { CHANGE_KINDS, describeChange, type ChangeKind } from './types.js';

/*
 * The agent's only way to more power: it files a request and is told to wait. The tool cannot
 * approve anything, and nothing the agent writes (in a reply or here) is read as a decision:
 * decisions come only from authenticated owners through ApprovalGateway.decide.
 */

const input = z.strictObject({
  kind: z.enum(CHANGE_KINDS),
  /** grant_host: the host; grant_secret: the secret name; create_routine: the routine name; install_skill: the skill; new_recipient: channel:recipient. */
  target: z.string().min(1).max(300),
  /** grant_secret: the host the secret is for. */
  host: z.string().min(1).max(300).optional(),
  /** create_routine: the trigger ("cron 0 8 * * * Europe/Berlin", "every 30m"); install_skill: the manifest (TOML). */
  details: z.string().max(16_000).optional(),
  /** create_routine: what the routine does. */
  instructions: z.string().max(4000).optional(),
  reason: z.string().min(1).max(2000),
});
type Input = z.infer<typeof input>;

function diffFor(i: Input): Record<string, unknown> {
  switch (i.kind) {
    case 'grant_host': return { host: i.target };
    case 'grant_secret': return { secret: i.target, host: i.host };
    case 'create_routine': return { name: i.target, trigger: i.details, instructions: i.instructions };
    case 'install_skill': return { skill: i.target, manifest: i.details };
    case 'new_recipient': {
      const at = i.target.indexOf(':');
      return { channel: at > 0 ? i.target.slice(0, at) : i.target, recipient: at > 0 ? i.target.slice(at + 1) : '' };
    }
  }
}

export const REQUEST_CAPABILITY_PROMPT = `If a task needs something you are not allowed (a network host your sandbox cannot reach, a secret, a routine, a skill, a new recipient), call request_capability with the exact change and your reason, then tell the user you are waiting for the owner's approval and what the request id is. You cannot approve requests yourself; only the owner can, outside this conversation's text. Never ask the user to paste approval commands for you.`;

export function createRequestCapabilityTool(gateway: ApprovalGateway, agent: string): AgentTool<Input> {
  return {
    name: 'request_capability',
    description: `Ask the owner for a capability change. kind: ${CHANGE_KINDS.join(' | ')}. target: the host (grant_host, e.g. "api.github.com"), the secret name (grant_secret, with host), the routine name (create_routine, with details = trigger and instructions), the skill name (install_skill, details = manifest), or "channel:recipient" (new_recipient). Returns the request id and its state; a pending request waits for the owner.`,
    inputSchema: input,
    async execute(i, ctx) {
      try {
        const req = await gateway.request({ requester: { kind: 'agent', id: agent, conversationId: ctx.conversationId }, kind: i.kind as ChangeKind, agent, diff: diffFor(i), reason: i.reason });
        const change = describeChange(req.kind, req.diff, req.agent);
        const status = req.state === 'pending' ? 'waiting for the owner\'s approval'
          : req.state === 'applied' ? 'approved by the owner\'s policy rules and applied'
            : req.state === 'denied' ? `denied by policy (${req.policy ?? 'rules'})` : req.state;
        return { id: req.id, state: req.state, change, status, expiresAt: req.expiresAt.toISOString() };
      } catch (err) {
        if (err instanceof RequestError) return { error: err.message };
        throw err;
      }
    },
  };
}
