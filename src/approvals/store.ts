import { randomBytes, randomUUID } from 'node:crypto';
import { canonicalJson } from '../audit/canonical.js';
import type { Db } from '../db/client.js';
import type { ApprovalRequest, ApprovalState, ChangeKind, Requester } from './types.js';

type Row = Awaited<ReturnType<Db['approvalRequest']['findUniqueOrThrow']>>;

function toRequest(r: Row): ApprovalRequest {
  let diff: Record<string, unknown>;
  try { diff = JSON.parse(r.diff) as Record<string, unknown>; } catch { diff = {}; }
  return {
    id: r.id,
    requester: { kind: r.requesterKind === 'person' ? 'person' : 'agent', id: r.requester, ...(r.conversationId ? { conversationId: r.conversationId } : {}) },
    kind: r.kind as ChangeKind, agent: r.agent, target: r.target, diff, reason: r.reason, state: r.state as ApprovalState,
    policy: r.policy, decidedBy: r.decidedBy, decidedAt: r.decidedAt, error: r.error, expiresAt: r.expiresAt, appliedAt: r.appliedAt, createdAt: r.createdAt,
  };
}

/** Short ids an owner can type (`/approve apr_k3j9x2mq`): 40 random bits, lower-case base32. */
export function newRequestId(): string {
  const alphabet = 'abcdefghijkmnpqrstuvwxyz23456789';
  return `apr_${[...randomBytes(8)].map((b) => alphabet[b % 32]).join('')}`;
}

export const REQUEST_ID = /^apr_[a-z2-9]{8}$/;

/** Approval requests and approved grants. State changes are compare-and-swap on the current state. */
export class ApprovalStore {
  constructor(private readonly db: Db) {}

  async create(r: { requester: Requester; kind: ChangeKind; agent: string; target: string; diff: Record<string, unknown>; reason: string; expiresAt: Date }): Promise<ApprovalRequest> {
    const row = await this.db.approvalRequest.create({
      data: {
        id: newRequestId(), requesterKind: r.requester.kind, requester: r.requester.id, conversationId: r.requester.conversationId ?? null,
        kind: r.kind, agent: r.agent, target: r.target, diff: canonicalJson(r.diff), reason: r.reason, state: 'pending', expiresAt: r.expiresAt,
      },
    });
    return toRequest(row);
  }

  async get(id: string): Promise<ApprovalRequest | undefined> {
    if (!REQUEST_ID.test(id)) return undefined;
    const row = await this.db.approvalRequest.findUnique({ where: { id } });
    return row ? toRequest(row) : undefined;
  }

  async list(opts: { state?: ApprovalState | undefined; limit?: number } = {}): Promise<ApprovalRequest[]> {
    const rows = await this.db.approvalRequest.findMany({ where: opts.state ? { state: opts.state } : {}, orderBy: { createdAt: 'desc' }, take: opts.limit ?? 100 });
    return rows.map(toRequest);
  }

  async countPending(conversationId: string): Promise<number> {
    return this.db.approvalRequest.count({ where: { state: 'pending', conversationId } });
  }

  async duePending(now: Date): Promise<ApprovalRequest[]> {
    return (await this.db.approvalRequest.findMany({ where: { state: 'pending', expiresAt: { lte: now } }, take: 500 })).map(toRequest);
  }

  /** Moves a request from `from` to `to`; false when it was no longer in `from` (someone else decided). */
  async transition(id: string, from: ApprovalState, to: ApprovalState, fields: { policy?: string; decidedBy?: string; decidedAt?: Date; error?: string; appliedAt?: Date } = {}): Promise<boolean> {
    const r = await this.db.approvalRequest.updateMany({ where: { id, state: from }, data: { state: to, ...fields } });
    return r.count === 1;
  }

  async addGrant(agent: string, kind: 'http' | 'secret', value: string, requestId: string): Promise<void> {
    const exists = await this.db.approvedGrant.findUnique({ where: { agent_kind_value: { agent, kind, value } } });
    if (!exists) await this.db.approvedGrant.create({ data: { id: randomUUID(), agent, kind, value, requestId } });
  }

  async grants(agent: string): Promise<{ http: string[]; secrets: string[] }> {
    const rows = await this.db.approvedGrant.findMany({ where: { agent }, orderBy: { createdAt: 'asc' } });
    return { http: rows.filter((r) => r.kind === 'http').map((r) => r.value), secrets: rows.filter((r) => r.kind === 'secret').map((r) => r.value) };
  }
}
