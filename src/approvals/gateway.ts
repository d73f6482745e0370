import type { DurableAuditSink } from '../audit/log.js';
import type { Logger } from '../logger.js';
import { matchRule, type Rule } from './rules.js';
import type { ApprovalStore } from './store.js';
import { describeChange, diffSchemas, targetOf, type ApprovalRequest, type ChangeKind, type Decider, type Decision, type Requester } from './types.js';

/** Whether a secret may be sent to a host, by the secret's own policy (the vault answers). */
export type SecretHostCheck = (secret: string, host: string) => Promise<'allowed' | 'not_in_policy' | 'unknown_secret'>;

/** Carries out an approved change. Throwing marks the request failed (with the message). */
export type Applier = (req: ApprovalRequest) => Promise<void>;

export interface GatewayOptions {
  store: ApprovalStore;
  /** Each step is committed before the caller hears of it (an owner's decision is acknowledged right after). */
  audit: DurableAuditSink;
  /** The rules, re-read on every request so an edited file applies at once. */
  rules: () => Rule[];
  /** Without it every grant_secret request is denied: nobody can tell whether the host is allowed. */
  checkSecretHost?: SecretHostCheck | undefined;
  /** Extra appliers (routine creation, skills, recipients) from the modules that own those changes. */
  appliers?: Partial<Record<ChangeKind, Applier>>;
  /** Tells the requesting agent (its conversation) the outcome. Failures are logged, never thrown. */
  notify?: ((req: ApprovalRequest, text: string) => Promise<void>) | undefined;
  expiryMs: number;
  logger?: Logger | undefined;
}

export type DecideOutcome = { ok: true; request: ApprovalRequest; message: string } | { ok: false; request?: ApprovalRequest; message: string };

export class RequestError extends Error {}

const MAX_PENDING_PER_CONVERSATION = 10;

/**
 * The approval gateway: capability changes are requests, decided by deterministic rules first and
 * then by an owner; applying is done here (the control plane), never by the agent. Every step is
 * written to the audit log.
 */
export class ApprovalGateway {
  private readonly appliers: Partial<Record<ChangeKind, Applier>>;

  constructor(private readonly opts: GatewayOptions) {
    this.appliers = {
      grant_host: async (r) => opts.store.addGrant(r.agent, 'http', String(r.diff.host), r.id),
      grant_secret: async (r) => opts.store.addGrant(r.agent, 'secret', String(r.diff.secret), r.id),
      ...opts.appliers,
    };
  }

  /**
   * Files a request. Input is validated per kind (a RequestError says what is wrong). The rules
   * run at once: the request comes back pending (a human must decide), denied, or approved and applied.
   */
  async request(input: { requester: Requester; kind: ChangeKind; agent: string; diff: Record<string, unknown>; reason: string }): Promise<ApprovalRequest> {
    const parsed = diffSchemas[input.kind].safeParse(input.diff);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new RequestError(`${input.kind}: ${issue?.path.join('.') || 'change'}: ${issue?.message ?? 'invalid'}`);
    }
    const diff = parsed.data as Record<string, unknown>;
    const conv = input.requester.conversationId;
    // A looping or injected agent must not bury the owner in requests.
    if (conv && (await this.opts.store.countPending(conv)) >= MAX_PENDING_PER_CONVERSATION) {
      throw new RequestError(`this conversation already has ${MAX_PENDING_PER_CONVERSATION} requests waiting for the owner; wait for their decision`);
    }
    const reason = input.reason.trim().slice(0, 2000) || '(no reason given)';
    let req = await this.opts.store.create({ requester: input.requester, kind: input.kind, agent: input.agent, target: targetOf(input.kind, diff), diff, reason, expiresAt: new Date(Date.now() + this.opts.expiryMs) });
    await this.audit('approval.requested', input.requester.kind === 'agent' ? `agent:${input.requester.id}` : input.requester.id, req, { reasonChars: reason.length });

    const verdict = await this.evaluate(req);
    if (verdict.action === 'ask') {
      if (verdict.policy) await this.opts.store.transition(req.id, 'pending', 'pending', { policy: verdict.policy });
      return (await this.opts.store.get(req.id))!;
    }
    const to = verdict.action === 'allow' ? 'approved' : 'denied';
    await this.opts.store.transition(req.id, 'pending', to, { policy: verdict.policy, decidedBy: 'policy', decidedAt: new Date() });
    await this.audit('approval.decided', 'policy', req, { decision: to, policy: verdict.policy });
    req = (await this.opts.store.get(req.id))!;
    if (to === 'approved') req = await this.apply(req);
    await this.tell(req);
    return req;
  }

  /**
   * An owner's decision. Enforced here, whatever the caller: only owners decide; a request cannot
   * be decided from the conversation whose agent asked, unless that conversation is the owner's
   * DM; only pending, unexpired requests. Refusals are audited too.
   */
  async decide(id: string, decision: Decision, by: Decider): Promise<DecideOutcome> {
    await this.expireDue();
    const who = `${by.channel}:${by.senderId}`;
    const req = await this.opts.store.get(id);
    const refuse = async (message: string, r?: ApprovalRequest): Promise<DecideOutcome> => {
      await this.opts.audit({ kind: 'approval.refused', actor: who, subject: id.slice(0, 40), data: { decision, reason: message, isOwner: by.isOwner, fromConversation: by.conversationId ?? null } });
      return { ok: false, message, ...(r ? { request: r } : {}) };
    };
    if (!req) return refuse(`no approval request ${id.slice(0, 40)}`);
    if (!by.isOwner) return refuse('only an owner may approve or deny requests', req);
    if (req.requester.conversationId && by.conversationId === req.requester.conversationId && !by.ownerDm) {
      return refuse('a request cannot be decided from the conversation that asked for it (decide from your DM with the bot, the CLI, or the web API)', req);
    }
    if (req.state !== 'pending') return refuse(`request ${id} is ${req.state}, not pending`, req);
    const to = decision === 'approve' ? 'approved' : 'denied';
    if (!(await this.opts.store.transition(id, 'pending', to, { decidedBy: who, decidedAt: new Date() }))) {
      return refuse(`request ${id} was decided or expired in the meantime`, (await this.opts.store.get(id)) ?? req);
    }
    await this.audit('approval.decided', who, req, { decision: to });
    let done = (await this.opts.store.get(id))!;
    if (to === 'approved') done = await this.apply(done);
    await this.tell(done);
    return { ok: true, request: done, message: `${id} ${done.state}: ${describeChange(done.kind, done.diff, done.agent)}` };
  }

  /** Pending requests past their expiry become expired (audited; the agent is told). */
  async expireDue(now = new Date()): Promise<number> {
    let n = 0;
    for (const req of await this.opts.store.duePending(now)) {
      if (!(await this.opts.store.transition(req.id, 'pending', 'expired', { decidedAt: now }))) continue;
      n += 1;
      await this.audit('approval.expired', 'system', req, {});
      await this.tell({ ...req, state: 'expired' });
    }
    return n;
  }

  async get(id: string): Promise<ApprovalRequest | undefined> {
    await this.expireDue();
    return this.opts.store.get(id);
  }

  async list(state?: ApprovalRequest['state']): Promise<ApprovalRequest[]> {
    await this.expireDue();
    return this.opts.store.list({ state });
  }

  private async evaluate(req: ApprovalRequest): Promise<{ action: 'allow' | 'deny' | 'ask'; policy?: string }> {
    if (req.kind === 'grant_secret') {
      const secret = String(req.diff.secret);
      const host = String(req.diff.host);
      const verdict = this.opts.checkSecretHost ? await this.opts.checkSecretHost(secret, host).catch(() => 'error' as const) : 'no_vault';
      if (verdict === 'unknown_secret') return { action: 'deny', policy: `built-in: there is no secret ${secret} in the vault` };
      if (verdict === 'not_in_policy') return { action: 'deny', policy: `built-in: ${host} is not in the policy of secret ${secret}` };
      if (verdict !== 'allowed') return { action: 'deny', policy: 'built-in: the vault could not check the secret\'s policy' };
    }
    const hit = matchRule(this.opts.rules(), req.kind, req.target);
    if (!hit) return { action: 'ask' };
    const policy = `rule ${hit.index}: ${hit.rule.action} ${hit.rule.kind} ${hit.rule.target}${hit.rule.note ? ` (${hit.rule.note})` : ''}`;
    // A new network host is always a human's call, whatever the rules say.
    if (hit.rule.action === 'allow' && req.kind === 'grant_host') return { action: 'ask', policy: `${policy}; but a new network host always asks` };
    return { action: hit.rule.action, policy };
  }

  /** Lets the module that owns a kind of change apply it (routines start after the control plane). */
  setApplier(kind: ChangeKind, applier: Applier): void {
    this.appliers[kind] = applier;
  }

  private async apply(req: ApprovalRequest): Promise<ApprovalRequest> {
    const applier = this.appliers[req.kind];
    if (!applier) return req; // Stays approved until the module that owns this kind applies it.
    try {
      await applier(req);
      await this.opts.store.transition(req.id, 'approved', 'applied', { appliedAt: new Date() });
      await this.audit('approval.applied', 'system', req, {});
      await this.opts.audit({ kind: 'capability.granted', actor: 'system', subject: `agent:${req.agent}`, data: { request: req.id, change: req.kind, target: req.target } });
    } catch (err) {
      await this.opts.store.transition(req.id, 'approved', 'failed', { error: (err as Error).message.slice(0, 500) });
      await this.audit('approval.failed', 'system', req, { error: (err as Error).message.slice(0, 200) });
    }
    return (await this.opts.store.get(req.id))!;
  }

  private async tell(req: ApprovalRequest): Promise<void> {
    if (!this.opts.notify || req.requester.kind !== 'agent') return;
    const change = describeChange(req.kind, req.diff, req.agent);
    const text = req.state === 'applied' || req.state === 'approved' ? `Approval ${req.id}: approved (${change}).`
      : req.state === 'denied' ? `Approval ${req.id}: denied (${change}).${req.policy ? ` Decided by ${req.policy}.` : ''}`
        : req.state === 'expired' ? `Approval ${req.id}: expired without a decision (${change}).`
          : `Approval ${req.id}: ${req.state}${req.error ? ` (${req.error})` : ''} (${change}).`;
    await this.opts.notify(req, text).catch((err: Error) => this.opts.logger?.warn({ err: err.message, request: req.id }, 'could not tell the agent an approval outcome'));
  }

  private async audit(kind: string, actor: string, req: ApprovalRequest, extra: Record<string, unknown>): Promise<void> {
    await this.opts.audit({ kind, actor, subject: req.id, data: { change: req.kind, agent: req.agent, target: req.target, conversationId: req.requester.conversationId ?? null, ...extra } });
  }
}
