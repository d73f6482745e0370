import { Worker, type Queue } from 'bullmq';
import type { DecideOutcome } from '../approvals/gateway.js';
import { describeChange, type ApprovalRequest, type Decider, type Decision } from '../approvals/types.js';
import type { Logger } from '../logger.js';
import { PREFIX, bullConnection, watchRedisErrors, type RedisTarget } from '../queues.js';

/*
 * Owners decide capability requests from chat: `/approve ID` / `/deny ID` (every platform, through
 * the shared core) and buttons in the DM each owner gets when a request needs a human. Who decides
 * is always the sender the platform authenticated (the update's sender id, a button press's user),
 * never anything written in a message; the gateway enforces the rest (owners only, not from the
 * asking conversation unless it is the owner's DM) and audits refusals.
 */

/** What the chat core needs of the approval gateway (the hub hands in `control.gateway`). */
export interface ChatApprovals {
  decide(id: string, decision: Decision, by: Decider): Promise<DecideOutcome>;
  get(id: string): Promise<ApprovalRequest | undefined>;
}

const COMMAND = /^\/(approve|deny)(?:@\w+)?(?:\s+(\S+))?\s*$/i;

/** "/approve apr_x" or "/deny@bot apr_x" as the whole message; anything else is not a decision. */
export function parseApprovalCommand(text: string): { decision: Decision; id: string } | undefined {
  const m = COMMAND.exec(text.trim());
  if (!m) return undefined;
  return { decision: m[1]!.toLowerCase() === 'approve' ? 'approve' : 'deny', id: (m[2] ?? '').slice(0, 64) };
}

/** Button payloads (Telegram allows 64 bytes): the decision and the request id, nothing else. */
export function callbackData(decision: Decision, id: string): string {
  return `apr:${decision}:${id}`;
}

export function parseCallbackData(data: string | undefined): { decision: Decision; id: string } | undefined {
  const m = /^apr:(approve|deny):(apr_[a-z2-9]{8})$/.exec(data ?? '');
  return m ? { decision: m[1] as Decision, id: m[2]! } : undefined;
}

/** The whole prompt stays within one message on every platform (Telegram 4096, Slack ~4000). */
const MAX_PROMPT_CHARS = 3900;
const MAX_REASON_CHARS = 1600;
const cut = (text: string, max: number, note: string) => (text.length > max ? `${text.slice(0, Math.max(0, max))}… (${note})` : text);

/**
 * The DM an owner gets: the exact change, the requester's reason quoted as its words (plain text,
 * so nothing in it can become markup or a control), the expiry and the id.
 */
export function ownerPromptText(req: ApprovalRequest, footer = `Decide with the buttons, or send /approve ${req.id} or /deny ${req.id} here.`): string {
  const more = `cut; see it all with: bulwark approvals show ${req.id}`;
  const who = req.requester.kind === 'agent' ? `agent "${req.requester.id}"` : req.requester.id;
  const reason = cut(req.reason.split('\n').map((l) => `│ ${l}`).join('\n'), MAX_REASON_CHARS, more);
  const build = (diff: string) => [
    `Approval request ${req.id}`,
    `Change: ${describeChange(req.kind, req.diff, req.agent)}`,
    `Kind: ${req.kind} · target: ${req.target}`,
    ...(req.kind === 'grant_host' ? [] : [`Exact change: ${diff}`]),
    `Asked by ${who}${req.requester.conversationId ? ` in conversation ${req.requester.conversationId}` : ''}.`,
    `Its reason, in its own words (not checked by anyone):`,
    reason,
    `Expires: ${req.expiresAt.toISOString()}`,
    '',
    footer,
  ].join('\n');
  const diff = JSON.stringify(req.diff, null, 1);
  const room = MAX_PROMPT_CHARS - build('').length - more.length - 4;
  return build(cut(diff, room, more));
}

/** The line an owner sees after a decision (a notice, or the edited DM). */
export function outcomeText(r: DecideOutcome): string {
  if (!r.ok) return `Not done: ${r.message}`;
  const state = r.request.state;
  const verb = state === 'applied' || state === 'approved' ? 'Approved' : state === 'denied' ? 'Denied' : `Now ${state}`;
  return `${verb}: ${r.message}`;
}

/**
 * The queues between whoever files a request (worker roles) and the adapters that DM the owners
 * (gateway roles): one per chat channel, like the outbound queues, so every channel's owners are
 * asked even when different gateways run different channels. "approval-prompts" is the single
 * queue of earlier versions; jobs left there are taken by any gateway for the channels it runs.
 */
export const APPROVAL_PROMPTS = 'approval-prompts';
export const approvalPromptQueue = (channel: string) => `${APPROVAL_PROMPTS}-${channel}`;
const PROMPT_JOB = { attempts: 8, backoff: { type: 'exponential' as const, delay: 1000 }, removeOnComplete: { age: 24 * 3600, count: 10_000 }, removeOnFail: { age: 7 * 24 * 3600 } };

/** Asks the gateways to DM the owners of each of `channels` (the enabled chat channels) about a pending request; one job per request and channel. */
export async function queueOwnerPrompt(queues: { for(channel: string): Queue }, id: string, channels: readonly string[]): Promise<void> {
  for (const channel of channels) await queues.for(channel).add('prompt', { id }, { ...PROMPT_JOB, jobId: `prompt/${id}` });
}

/**
 * Consumes the owner prompts of each chat channel this gateway runs: a request still pending goes
 * to that channel's owners. A failed send is retried (owners already prompted are skipped by
 * ChatCore.promptEachOwner).
 */
export function startOwnerPrompts(opts: { redisTarget: RedisTarget; get(id: string): Promise<ApprovalRequest | undefined>; prompters: Map<string, (req: ApprovalRequest) => Promise<void>>; logger: Logger }): Worker[] {
  const start = (queue: string, prompt: (req: ApprovalRequest) => Promise<void>) => {
    const worker = new Worker(queue, async (job) => {
      const id = typeof job.data?.id === 'string' ? job.data.id : '';
      const req = await opts.get(id);
      if (!req || req.state !== 'pending') return;
      await prompt(req);
    }, { connection: bullConnection(opts.redisTarget), prefix: PREFIX, concurrency: 4 });
    worker.on('failed', (job, err) => opts.logger.warn({ jobId: job?.id, attempt: job?.attemptsMade, err: err.message }, 'could not send an approval request to the owners (retrying)'));
    watchRedisErrors(worker, `approval prompt worker ${queue}`, opts.logger);
    return worker;
  };
  const all = async (req: ApprovalRequest) => {
    const failed = (await Promise.allSettled([...opts.prompters.values()].map((p) => p(req)))).filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed.length > 0) throw new Error(failed.map((f) => (f.reason as Error).message).join('; '));
  };
  return [...[...opts.prompters].map(([channel, prompt]) => start(approvalPromptQueue(channel), prompt)), start(APPROVAL_PROMPTS, all)];
}
