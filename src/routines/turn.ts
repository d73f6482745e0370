import { generateText, NoObjectGeneratedError, Output, type LanguageModel } from 'ai';
import { z } from 'zod';
import { admitted, type LlmAdmission } from '../agent/admission.js';
import { describeLlmError, LlmUnavailableError, runTurn } from '../agent/loop.js';
import type { ToolRegistry } from '../agent/tools.js';
import type { LlmConfig } from '../config/schema.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { Prompt } from './prompt.js';

/*
 * The model calls of a run. A routine is an ordinary agent turn (tools included) whose reply is
 * posted; the heartbeat asks for a structured verdict, so "nothing to report" is `notify: false`
 * and never text that could leak into a chat.
 */

export const verdictSchema = z.object({
  notify: z.boolean().describe('true only if something needs the owner\'s attention now'),
  message: z.string().max(4000).optional().describe('what to tell the owner, when notify is true'),
});
export type Verdict = z.infer<typeof verdictSchema>;

export interface TurnDeps {
  model: LanguageModel;
  /** Fair model-call slots and the model's circuit breaker: routines queue and fail fast like chat turns. */
  admission?: LlmAdmission;
  llm: LlmConfig;
  tools: ToolRegistry;
  metrics: Metrics;
  logger: Logger;
}

export interface Spent { tokensIn: number; tokensOut: number }

/** The model call failed; tokens it used still count against the budget. */
export class RunFailed extends Error {
  constructor(message: string, readonly spent: Spent) {
    super(message);
    this.name = 'RunFailed';
  }
}

function count(deps: TurnDeps, ms: number, inTok: number, outTok: number, ok: boolean): void {
  const provider = deps.llm.provider ?? 'none';
  deps.metrics.llmDuration.observe({ provider, outcome: ok ? 'ok' : 'error' }, ms / 1000);
  deps.metrics.llmTokens.inc({ provider, kind: 'input' }, inTok);
  deps.metrics.llmTokens.inc({ provider, kind: 'output' }, outTok);
}

/** A routine's turn: instructions in, reply text out, within `maxTokens`. */
export async function routineTurn(deps: TurnDeps, p: Prompt, opts: { maxTokens: number; conversationId: string; signal: AbortSignal }): Promise<{ text: string } & Spent> {
  try {
    const r = await runTurn({
      model: deps.model, system: p.system, messages: [{ role: 'user', content: p.prompt }], tools: deps.tools,
      limits: { maxSteps: deps.llm.max_steps, maxTokens: opts.maxTokens, stepTimeoutMs: deps.llm.timeout_ms, maxRetries: deps.llm.max_retries },
      conversationId: opts.conversationId, signal: opts.signal, logger: deps.logger,
      ...(deps.admission ? { admission: deps.admission } : {}),
      onStep: (s) => count(deps, s.ms, s.inputTokens, s.outputTokens, s.ok),
    });
    return { text: r.text, tokensIn: r.inputTokens, tokensOut: r.outputTokens };
  } catch (err) {
    if (err instanceof LlmUnavailableError) throw new RunFailed(err.message, { tokensIn: 0, tokensOut: 0 });
    throw err;
  }
}

/** The heartbeat's call: a verdict checked against `verdictSchema`, within `maxTokens`. */
export async function heartbeatVerdict(deps: TurnDeps, p: Prompt, opts: { maxTokens: number; signal: AbortSignal }): Promise<{ verdict: Verdict } & Spent> {
  const started = Date.now();
  try {
    const r = await generateText({
      model: admitted(deps.model, deps.admission, 'heartbeat', opts.signal), system: p.system, prompt: p.prompt,
      output: Output.object({ schema: verdictSchema, name: 'heartbeat_verdict' }),
      maxOutputTokens: Math.min(2048, opts.maxTokens), maxRetries: deps.llm.max_retries,
      timeout: { stepMs: deps.llm.timeout_ms }, abortSignal: opts.signal,
    });
    const spent = { tokensIn: r.totalUsage.inputTokens ?? 0, tokensOut: r.totalUsage.outputTokens ?? 0 };
    count(deps, Date.now() - started, spent.tokensIn, spent.tokensOut, true);
    return { verdict: r.output, ...spent };
  } catch (err) {
    if (opts.signal.aborted) throw err;
    const usage = NoObjectGeneratedError.isInstance(err) ? err.usage : undefined;
    const spent = { tokensIn: usage?.inputTokens ?? 0, tokensOut: usage?.outputTokens ?? 0 };
    count(deps, Date.now() - started, spent.tokensIn, spent.tokensOut, false);
    const why = NoObjectGeneratedError.isInstance(err) ? 'the model did not answer with a valid verdict {notify, message}' : describeLlmError(err);
    throw new RunFailed(why, spent);
  }
}
