import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { SESSION_COOKIE, tokensEqual } from '../gateway/auth.js';
import type { ApprovalGateway } from './gateway.js';
import { REQUEST_ID } from './store.js';
import { describeChange, STATES, type ApprovalRequest } from './types.js';

/*
 * /api/approvals: list, show, approve, deny. The caller is the owner when they hold the API token
 * (the CLI) or a web session (made from the owner's login link). Checked here as well as by the
 * /api hook, because these routes grant powers.
 */

export interface ApprovalApiDeps {
  gateway: ApprovalGateway;
  apiToken: string;
  sessions?: { valid(sid: string | undefined): Promise<boolean> } | undefined;
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
  async function caller(req: FastifyRequest): Promise<'api' | 'web' | undefined> {
    const h = req.headers.authorization;
    if (h?.startsWith('Bearer ')) return tokensEqual(h.slice(7).trim(), deps.apiToken) ? 'api' : undefined;
    return (await deps.sessions?.valid(req.cookies?.[SESSION_COOKIE])) ? 'web' : undefined;
  }
  const refuse = { error: 'approvals need Authorization: Bearer <token from BULWARK_HOME/api-token> (the bulwark CLI sends it) or a web chat session' };

  app.get('/api/approvals', async (req, reply) => {
    if (!(await caller(req))) return reply.code(401).send(refuse);
    const q = listQuery.safeParse(req.query);
    if (!q.success) return reply.code(400).send({ error: `state: ${q.error.issues[0]?.message}` });
    return { requests: (await deps.gateway.list(q.data.state)).map(approvalView) };
  });

  app.get('/api/approvals/:id', async (req, reply) => {
    if (!(await caller(req))) return reply.code(401).send(refuse);
    const p = idParam.safeParse(req.params);
    if (!p.success) return reply.code(400).send({ error: `id: ${p.error.issues[0]?.message}` });
    const r = await deps.gateway.get(p.data.id);
    if (!r) return reply.code(404).send({ error: `no approval request ${p.data.id}: see \`bulwark approvals list\`` });
    return approvalView(r);
  });

  for (const decision of ['approve', 'deny'] as const) {
    app.post(`/api/approvals/:id/${decision}`, async (req, reply) => {
      const channel = await caller(req);
      if (!channel) return reply.code(401).send(refuse);
      // A session cookie rides along on cross-site requests: a decision by cookie must come from our own page.
      const origin = req.headers.origin;
      if (channel === 'web' && (!origin || origin !== `${req.protocol}://${req.headers.host}`)) return reply.code(403).send({ error: 'a decision with a session cookie must come from the Bulwark web page itself' });
      const p = idParam.safeParse(req.params);
      if (!p.success) return reply.code(400).send({ error: `id: ${p.error.issues[0]?.message}` });
      const out = await deps.gateway.decide(p.data.id, decision, { channel, senderId: 'owner', isOwner: true });
      if (!out.ok) return reply.code(out.request ? 409 : 404).send({ error: out.message, ...(out.request ? { request: approvalView(out.request) } : {}) });
      return { message: out.message, request: approvalView(out.request) };
    });
  }
}
