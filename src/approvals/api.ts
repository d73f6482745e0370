import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { ApprovalGateway } from './gateway.js';
import { REQUEST_ID } from './store.js';
import { describeChange, STATES, type ApprovalRequest } from './types.js';

/*
 * /api/approvals: list, show, approve, deny. Owner routes (src/gateway/access.ts): the caller holds
 * the API token (the CLI) or a web session made from the owner's login link, and a decision made with
 * the session cookie came from our own page.
 */

export interface ApprovalApiDeps {
  gateway: ApprovalGateway;
}

const idParam = z.strictObject({ id: z.string().regex(REQUEST_ID, 'not an approval request id (apr_ and 8 letters/digits)') });
const listQuery = z.strictObject({ state: z.enum(STATES).optional() });

/** The JSON shape of a request for the CLI and the web chat. */
export function approvalView(r: ApprovalRequest) {
  return {
    id: r.id, state: r.state, kind: r.kind, agent: r.agent, target: r.target, change: describeChange(r.kind, r.diff, r.agent), diff: r.diff,
    requester: r.requester, reason: r.reason, policy: r.policy, decidedBy: r.decidedBy, decidedAt: r.decidedAt?.toISOString() ?? null,
    error: r.error, expiresAt: r.expiresAt.toISOString(), appliedAt: r.appliedAt?.toISOString() ?? null, createdAt: r.createdAt.toISOString(),
  };
}

export function registerApprovalApi(app: FastifyInstance, deps: ApprovalApiDeps): void {
  app.get('/api/approvals', async (req, reply) => {
    const q = listQuery.safeParse(req.query);
    if (!q.success) return reply.code(400).send({ error: `state: ${q.error.issues[0]?.message}` });
    return { requests: (await deps.gateway.list(q.data.state)).map(approvalView) };
  });

  app.get('/api/approvals/:id', async (req, reply) => {
    const p = idParam.safeParse(req.params);
    if (!p.success) return reply.code(400).send({ error: `id: ${p.error.issues[0]?.message}` });
    const r = await deps.gateway.get(p.data.id);
    if (!r) return reply.code(404).send({ error: `no approval request ${p.data.id}: see \`bulwark approvals list\`` });
    return approvalView(r);
  });

  for (const decision of ['approve', 'deny'] as const) {
    app.post(`/api/approvals/:id/${decision}`, async (req, reply) => {
      // The access check ran before this: the caller is the owner, by token (CLI) or session (web page).
      const channel = req.caller === 'token' ? 'api' : 'web';
      const p = idParam.safeParse(req.params);
      if (!p.success) return reply.code(400).send({ error: `id: ${p.error.issues[0]?.message}` });
      const out = await deps.gateway.decide(p.data.id, decision, { channel, senderId: 'owner', isOwner: true });
      if (!out.ok) return reply.code(out.request ? 409 : 404).send({ error: out.message, ...(out.request ? { request: approvalView(out.request) } : {}) });
      return { message: out.message, request: approvalView(out.request) };
    });
  }
}
