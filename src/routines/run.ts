import type { LlmAdmission } from '../agent/admission.js';
import type { OutboundQueues } from '../queues.js';
import type { Redis } from 'ioredis';
import type { LanguageModel } from 'ai';
import { DEFAULT_SYSTEM_PROMPT } from '../agent/worker.js';
import type { ToolRegistry } from '../agent/tools.js';
import { conversationIdFor } from '../channels/contract.js';
import type { Config } from '../config/schema.js';
import type { TextCipher } from '../conversations/cipher.js';
import type { ConversationStore } from '../conversations/store.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { deliver } from './deliver.js';
import { checkBudget, estimateTokens, isMissed } from './guards.js';
import { checklistPath, dropEvents, pendingEvents, readChecklist } from './heartbeat.js';
import { heartbeatPrompt, routinePrompt } from './prompt.js';
import type { Tick } from './queue.js';
import type { Routine } from './spec.js';
import type { RoutineStore, RunEnd } from './store.js';
import { startOfLocalDay, withinActiveHours } from './time.js';
import { heartbeatVerdict, routineTurn, RunFailed, type Spent } from './turn.js';

/*
 * One run, after the lock is held: the guards in the order that costs least (missed tick, active
 * hours, nothing new, budget), then the model, then delivery. Every path returns how the run ended,
 * and the caller records it, so skips are as visible in the history as deliveries.
 */

export interface RunDeps {
  redis: Redis;
  store: RoutineStore;
  conversations: ConversationStore;
  outbound: OutboundQueues;
  cipher: TextCipher;
  model: LanguageModel | undefined;
  /** Fair model-call slots and the model's circuit breaker (shared with chat turns). */
  admission?: LlmAdmission;
  tools: ToolRegistry;
  /** Appended to the system prompt with the tools (how to use the sandbox). */
  promptExtras: string[];
  config: Config;
  home: string;
  metrics: Metrics;
  logger: Logger;
  /** Checks what a run posts before it is stored or sent (the vault's leak detector). */
  guard?: ((text: string) => Promise<{ text: string; findings: unknown[] }>) | undefined;
}

export interface RunContext { runId: string; tick: Tick; scheduledAt: number | undefined; signal: AbortSignal }

function deliverDeps(deps: RunDeps) {
  return {
    store: deps.conversations, outbound: deps.outbound, cipher: deps.cipher, guard: deps.guard,
    onLeak: (findings: unknown[]) => {
      deps.metrics.leaks.inc({ place: 'routine' }, findings.length);
      deps.logger.warn({ findings }, 'redacted a credential from a routine message');
    },
  };
}

const NO_MODEL = 'no language model is configured: set BULWARK_LLM_PROVIDER and BULWARK_LLM_MODEL (see `bulwark doctor`)';

function failed(err: unknown): RunEnd {
  const spent: Spent = err instanceof RunFailed ? err.spent : { tokensIn: 0, tokensOut: 0 };
  return { outcome: 'failed', detail: (err as Error).message, ...spent };
}

/** Decides whether the run may call the model, calls it, and delivers what it says. */
export async function executeRun(deps: RunDeps, r: Routine, ctx: RunContext): Promise<RunEnd> {
  const now = Date.now();
  const scheduled = ctx.tick.trigger === 'schedule';
  if (scheduled && ctx.scheduledAt !== undefined && r.missedRuns === 'skip' && isMissed(r, ctx.scheduledAt, now)) {
    return { outcome: 'skipped_missed', detail: `started ${Math.round((now - ctx.scheduledAt) / 1000)} s after its time (no scheduler was free); this routine skips missed runs` };
  }
  if (scheduled && r.activeHours && r.timezone && !withinActiveHours(now, r.activeHours, r.timezone)) {
    return { outcome: 'skipped_inactive_hours', detail: `outside active hours ${r.activeHours} (${r.timezone})` };
  }
  if (!deps.model) return { outcome: 'failed', detail: NO_MODEL };
  const dayStart = startOfLocalDay(now, r.timezone ?? 'UTC');
  const base = deps.config.llm.system_prompt ?? DEFAULT_SYSTEM_PROMPT;
  const turnDeps = { model: deps.model, llm: deps.config.llm, tools: deps.tools, metrics: deps.metrics, logger: deps.logger, ...(deps.admission ? { admission: deps.admission } : {}) };
  // The heartbeat's call has no tools, so it gets the base prompt without the tools' instructions.
  if (r.kind === 'heartbeat') return heartbeatRun(deps, r, ctx, { now, dayStart, system: base, turnDeps });
  const system = [base, ...deps.promptExtras].join('\n\n');

  const prompt = routinePrompt(system, r, now, ctx.tick.trigger, ctx.tick.payload);
  const usage = await deps.store.usageSince(r.id, dayStart);
  const budget = checkBudget(r, { runsToday: usage.runs, tokensToday: usage.tokens }, estimateTokens(prompt.system, prompt.prompt));
  if (!budget.ok) return { outcome: 'skipped_budget', detail: budget.reason };
  try {
    const answer = await routineTurn(turnDeps, prompt, { maxTokens: budget.maxTokens, conversationId: conversationIdFor(r.target), signal: ctx.signal });
    const messageId = await deliver(deliverDeps(deps), r, ctx.runId, answer.text, answer);
    return { outcome: 'delivered', messageId, tokensIn: answer.tokensIn, tokensOut: answer.tokensOut };
  } catch (err) {
    if (ctx.signal.aborted) throw err;
    return failed(err);
  }
}

async function heartbeatRun(deps: RunDeps, r: Routine, ctx: RunContext, c: { now: number; dayStart: number; system: string; turnDeps: Parameters<typeof heartbeatVerdict>[0] }): Promise<RunEnd> {
  const checklist = readChecklist(checklistPath(deps.config, deps.home));
  const [events, watermark, last] = await Promise.all([pendingEvents(deps.redis, r.id), deps.store.messageWatermark(), deps.store.lastAnsweredRun(r.id)]);
  const seen = { inputHash: checklist.hash, inputSeq: watermark };
  if (!checklist.text) return { outcome: 'skipped_no_input', detail: `the checklist ${checklistPath(deps.config, deps.home)} has no items (only comments)`, ...seen };
  const newMessages = last?.inputSeq != null ? await deps.store.userMessagesAfter(last.inputSeq) : 0;
  const checklistChanged = !last || last.inputHash !== checklist.hash;
  // The token guard: a scheduled beat with nothing new to look at never reaches the model.
  if (ctx.tick.trigger === 'schedule' && !checklistChanged && newMessages === 0 && events.length === 0) {
    return { outcome: 'skipped_no_input', detail: 'nothing new since the last heartbeat: no messages, no webhook events, checklist unchanged', ...seen };
  }
  const conversationId = await deps.conversations.ensureConversation({ id: conversationIdFor(r.target), ...r.target });
  const recent = (await deps.conversations.history(conversationId, 10)).map((m) => ({ role: m.role, text: m.text.slice(0, 2000) }));
  const prompt = heartbeatPrompt(c.system, r, c.now, { checklist: checklist.text, newMessages, events, recent });
  const [usage, ownerTokens] = await Promise.all([deps.store.usageSince(r.id, c.dayStart), deps.store.heartbeatTokensSince(r.owner, c.dayStart)]);
  const budget = checkBudget(r, { runsToday: usage.runs, tokensToday: ownerTokens }, estimateTokens(prompt.system, prompt.prompt));
  if (!budget.ok) return { outcome: 'skipped_budget', detail: budget.reason, ...seen };
  try {
    const { verdict, ...spent } = await heartbeatVerdict(c.turnDeps, prompt, { maxTokens: budget.maxTokens, signal: ctx.signal });
    await dropEvents(deps.redis, r.id, events.length);
    const message = verdict.message?.trim();
    if (!verdict.notify || !message) {
      return { outcome: 'silent', ...spent, ...seen, ...(verdict.notify ? { detail: 'the verdict said notify but had no message' } : {}) };
    }
    const messageId = await deliver(deliverDeps(deps), r, ctx.runId, message, spent);
    return { outcome: 'delivered', messageId, ...spent, ...seen };
  } catch (err) {
    if (ctx.signal.aborted) throw err;
    return failed(err);
  }
}
