import { randomBytes } from 'node:crypto';
import { isUniqueViolation, type Db } from '../db/client.js';
import type { Routine as RoutineRow, RoutineRun as RunRow } from '../generated/sqlite/client.js';
import type { Draft, Outcome, Routine, Trigger } from './spec.js';

/*
 * Every read and write of the Routine and RoutineRun tables. Webhook secrets leave this module only
 * through `webhookSecret` (the gateway's signature check) and the return value of create/rotate
 * (shown to the owner once).
 */

export interface RunRecord {
  id: string;
  routineId: string;
  trigger: 'schedule' | 'manual' | 'webhook';
  scheduledAt: Date | null;
  startedAt: Date;
  finishedAt: Date | null;
  outcome: Outcome;
  detail: string | null;
  tokensIn: number;
  tokensOut: number;
  inputHash: string | null;
  inputSeq: number | null;
  messageId: string | null;
  worker: string | null;
}

export interface RunEnd {
  outcome: Exclude<Outcome, 'running'>;
  detail?: string | undefined;
  tokensIn?: number;
  tokensOut?: number;
  inputHash?: string | undefined;
  inputSeq?: number | undefined;
  messageId?: string | undefined;
}

/** Outcomes of runs that reached the model: they count against "runs per day". */
export const LLM_OUTCOMES: Outcome[] = ['delivered', 'silent', 'failed'];

export const newRoutineId = () => `r_${randomBytes(9).toString('base64url')}`;
export const newWebhookSecret = () => `whsec_${randomBytes(32).toString('base64url')}`;

function toTrigger(row: RoutineRow): Trigger {
  switch (row.triggerType) {
    case 'cron': return { type: 'cron', cron: row.cron! };
    case 'interval': return { type: 'interval', everySeconds: row.everySeconds! };
    case 'once': return { type: 'once', runAt: row.runAt!.getTime() };
    default: return { type: 'webhook' };
  }
}

function toRoutine(row: RoutineRow): Routine {
  return {
    id: row.id, owner: row.owner, name: row.name, kind: row.kind === 'heartbeat' ? 'heartbeat' : 'routine',
    target: { channel: row.channel, accountId: row.accountId, chatId: row.chatId },
    trigger: toTrigger(row), timezone: row.timezone ?? undefined, instructions: row.instructions, enabled: row.enabled,
    activeHours: row.activeHours ?? undefined,
    budget: { maxTokensPerRun: row.maxTokensPerRun, maxTokensPerDay: row.maxTokensPerDay ?? undefined, maxRunsPerDay: row.maxRunsPerDay ?? undefined },
    missedRuns: row.missedRuns === 'skip' ? 'skip' : 'catch_up', hasWebhookSecret: row.webhookSecret !== null,
  };
}

function toColumns(d: Draft) {
  const t = d.trigger;
  return {
    name: d.name, channel: d.target.channel, accountId: d.target.accountId, chatId: d.target.chatId,
    triggerType: t.type, cron: t.type === 'cron' ? t.cron.split(/\s+/).join(' ') : null,
    everySeconds: t.type === 'interval' ? t.everySeconds : null, runAt: t.type === 'once' ? new Date(t.runAt) : null,
    timezone: d.timezone ?? null, instructions: d.instructions, enabled: d.enabled, activeHours: d.activeHours ?? null,
    maxTokensPerRun: d.maxTokensPerRun, maxTokensPerDay: d.maxTokensPerDay ?? null, maxRunsPerDay: d.maxRunsPerDay ?? null,
    missedRuns: d.missedRuns,
  };
}

/** The draft a stored routine came from: what `edit` starts from. */
export function toDraft(r: Routine): Draft {
  return {
    name: r.name, target: r.target, trigger: r.trigger, instructions: r.instructions, enabled: r.enabled, missedRuns: r.missedRuns,
    maxTokensPerRun: r.budget.maxTokensPerRun,
    ...(r.timezone ? { timezone: r.timezone } : {}), ...(r.activeHours ? { activeHours: r.activeHours } : {}),
    ...(r.budget.maxTokensPerDay ? { maxTokensPerDay: r.budget.maxTokensPerDay } : {}), ...(r.budget.maxRunsPerDay ? { maxRunsPerDay: r.budget.maxRunsPerDay } : {}),
  };
}


/** Seals webhook keys at rest (the vault, handed in by the hub or the CLI). */
export interface WebhookKeySealer {
  seal(routineId: string, key: string): string;
  open(routineId: string, sealed: string): string;
}

/** Sealed values carry a version prefix; older databases hold webhook keys in plaintext. */
const isSealed = (stored: string) => stored.startsWith('v1.');

export class RoutineStore {
  constructor(private readonly db: Db, private readonly sealer: WebhookKeySealer) {}

  /** Seals webhook keys stored in plaintext by versions before the vault. Returns how many. */
  async sealPlaintextKeys(): Promise<number> {
    const rows = await this.db.routine.findMany({ where: { webhookSecret: { not: null } }, select: { id: true, webhookSecret: true } });
    let sealed = 0;
    for (const r of rows) {
      if (isSealed(r.webhookSecret!)) continue;
      const { count } = await this.db.routine.updateMany({ where: { id: r.id, webhookSecret: r.webhookSecret }, data: { webhookSecret: this.sealer.seal(r.id, r.webhookSecret!) } });
      sealed += count;
    }
    return sealed;
  }

  /** Creates a routine; a webhook routine gets a secret, returned here and never again. */
  async create(d: Draft, opts: { owner: string; kind?: Routine['kind']; id?: string; withSecret?: boolean }): Promise<{ routine: Routine; secret?: string }> {
    const secret = (opts.withSecret ?? d.trigger.type === 'webhook') ? newWebhookSecret() : undefined;
    const id = opts.id ?? newRoutineId();
    try {
      const row = await this.db.routine.create({ data: { id, owner: opts.owner, kind: opts.kind ?? 'routine', ...toColumns(d), webhookSecret: secret ? this.sealer.seal(id, secret) : null } });
      return { routine: toRoutine(row), ...(secret ? { secret } : {}) };
    } catch (err) {
      if (isUniqueViolation(err)) throw new Error(`a routine named "${d.name}" already exists: pick another name, or change it with \`bulwark routine edit ${d.name}\``);
      throw err;
    }
  }

  /** Replaces a routine's settings; a routine that becomes a webhook routine gets a secret (returned). */
  async update(id: string, d: Draft): Promise<{ routine: Routine; secret?: string }> {
    const current = await this.db.routine.findUnique({ where: { id }, select: { webhookSecret: true } });
    const secret = d.trigger.type === 'webhook' && !current?.webhookSecret ? newWebhookSecret() : undefined;
    const row = await this.db.routine.update({ where: { id }, data: { ...toColumns(d), ...(secret ? { webhookSecret: this.sealer.seal(id, secret) } : {}) } });
    return { routine: toRoutine(row), ...(secret ? { secret } : {}) };
  }

  async setEnabled(id: string, enabled: boolean): Promise<void> {
    await this.db.routine.update({ where: { id }, data: { enabled } });
  }

  /** A new webhook secret; the old one stops working at once. */
  async rotateSecret(id: string): Promise<string> {
    const secret = newWebhookSecret();
    await this.db.routine.update({ where: { id }, data: { webhookSecret: this.sealer.seal(id, secret) } });
    return secret;
  }

  async webhookSecret(id: string): Promise<string | undefined> {
    const row = await this.db.routine.findUnique({ where: { id }, select: { webhookSecret: true } });
    if (!row?.webhookSecret) return undefined;
    return isSealed(row.webhookSecret) ? this.sealer.open(id, row.webhookSecret) : row.webhookSecret;
  }

  async remove(id: string): Promise<void> {
    await this.db.routine.delete({ where: { id } });
  }

  async get(id: string): Promise<Routine | undefined> {
    const row = await this.db.routine.findUnique({ where: { id } });
    return row ? toRoutine(row) : undefined;
  }

  async getByName(owner: string, name: string): Promise<Routine | undefined> {
    const row = await this.db.routine.findUnique({ where: { owner_name: { owner, name } } });
    return row ? toRoutine(row) : undefined;
  }

  async list(owner?: string): Promise<Routine[]> {
    const rows = await this.db.routine.findMany({ where: owner ? { owner } : {}, orderBy: { name: 'asc' } });
    return rows.map(toRoutine);
  }

  /**
   * Records the start of a run. A run id is derived from its job, so a job that runs again (its
   * scheduler process died) finds its own record: `existing` is then set.
   */
  async startRun(r: { id: string; routineId: string; trigger: RunRecord['trigger']; scheduledAt?: number | undefined; worker: string }): Promise<{ run: RunRecord; existing: boolean }> {
    try {
      const row = await this.db.routineRun.create({
        data: { id: r.id, routineId: r.routineId, trigger: r.trigger, scheduledAt: r.scheduledAt ? new Date(r.scheduledAt) : null, startedAt: new Date(), outcome: 'running', tokensIn: 0, tokensOut: 0, worker: r.worker },
      });
      return { run: row as RunRecord, existing: false };
    } catch (err) {
      if (!isUniqueViolation(err)) throw err;
      const row = await this.db.routineRun.findUnique({ where: { id: r.id } });
      if (!row) throw err;
      return { run: row as RunRecord, existing: true };
    }
  }

  async finishRun(id: string, end: RunEnd): Promise<void> {
    await this.db.routineRun.update({
      where: { id },
      data: {
        outcome: end.outcome, finishedAt: new Date(), detail: end.detail?.slice(0, 1000) ?? null, tokensIn: end.tokensIn ?? 0, tokensOut: end.tokensOut ?? 0,
        inputHash: end.inputHash ?? null, inputSeq: end.inputSeq ?? null, messageId: end.messageId ?? null,
      },
    });
  }

  /** Runs that reached the model and tokens used since `since`: what a routine's daily budget counts. */
  async usageSince(routineId: string, since: number): Promise<{ runs: number; tokens: number }> {
    const where = { routineId, startedAt: { gte: new Date(since) } };
    const [runs, sum] = await Promise.all([
      this.db.routineRun.count({ where: { ...where, outcome: { in: LLM_OUTCOMES } } }),
      this.db.routineRun.aggregate({ where, _sum: { tokensIn: true, tokensOut: true } }),
    ]);
    return { runs, tokens: (sum._sum.tokensIn ?? 0) + (sum._sum.tokensOut ?? 0) };
  }

  /** Tokens all of an owner's heartbeat runs used since `since`: the per-owner heartbeat cap. */
  async heartbeatTokensSince(owner: string, since: number): Promise<number> {
    const sum = await this.db.routineRun.aggregate({ where: { startedAt: { gte: new Date(since) }, routine: { owner, kind: 'heartbeat' } }, _sum: { tokensIn: true, tokensOut: true } });
    return (sum._sum.tokensIn ?? 0) + (sum._sum.tokensOut ?? 0);
  }

  /** The last run that got an answer from the model: the heartbeat's "since the last run". */
  async lastAnsweredRun(routineId: string): Promise<RunRecord | undefined> {
    const row = await this.db.routineRun.findFirst({ where: { routineId, outcome: { in: ['delivered', 'silent'] } }, orderBy: { startedAt: 'desc' } });
    return (row as RunRecord | null) ?? undefined;
  }

  async history(routineId: string, limit: number): Promise<RunRecord[]> {
    return (await this.db.routineRun.findMany({ where: { routineId }, orderBy: { startedAt: 'desc' }, take: limit })) as RunRecord[];
  }

  async lastRun(routineId: string): Promise<RunRecord | undefined> {
    return ((await this.db.routineRun.findFirst({ where: { routineId }, orderBy: { startedAt: 'desc' } })) as RunRecord | null) ?? undefined;
  }

  /** The newest message's seq (0 when none). Messages are counted by seq, never read: no bodies here. */
  async messageWatermark(): Promise<number> {
    const row = await this.db.message.findFirst({ orderBy: { seq: 'desc' }, select: { seq: true } });
    return row?.seq ?? 0;
  }

  /** How many messages people sent after `seq` (replies and routine output do not count). */
  async userMessagesAfter(seq: number): Promise<number> {
    return this.db.message.count({ where: { seq: { gt: seq }, role: 'user' } });
  }

  /** Saves the heartbeat's routine row as the configuration describes it (id is per owner). */
  async upsertHeartbeat(owner: string, d: Draft): Promise<Routine> {
    const id = `hb_${owner}`;
    if (!(await this.db.routine.findUnique({ where: { id }, select: { id: true } }))) {
      try {
        return (await this.create(d, { owner, kind: 'heartbeat', id, withSecret: true })).routine;
      } catch (err) {
        // Two schedulers starting at once: the other one created it first.
        if (!(await this.db.routine.findUnique({ where: { id }, select: { id: true } }))) throw err;
      }
    }
    return (await this.update(id, d)).routine;
  }

  /**
   * Marks runs of a routine still shown as running, other than `current`, as failed. Called by a
   * run that holds the routine's lock, which proves no other run of it is alive: such records were
   * left by a scheduler process that died mid-run.
   */
  async closeAbandoned(routineId: string, current: string): Promise<number> {
    const r = await this.db.routineRun.updateMany({
      where: { routineId, outcome: 'running', id: { not: current } },
      data: { outcome: 'failed', finishedAt: new Date(), detail: 'interrupted: the scheduler process running it stopped' },
    });
    return r.count;
  }
}
