import { createAnthropic } from '@ai-sdk/anthropic';
import { createOpenAI } from '@ai-sdk/openai';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { wrapLanguageModel, type LanguageModel } from 'ai';
import type { LlmConfig } from '../config/schema.js';

/** Shown to the user when no model is configured: what to set, for a local model or a hosted one. */
export const NO_MODEL_REPLY = [
  'No language model is configured yet, so I cannot answer.',
  '',
  'Fully local (Ollama): install Ollama, run `ollama pull llama3.2`, then start Bulwark with',
  '`BULWARK_LLM_PROVIDER=openai-compatible BULWARK_LLM_BASE_URL=http://127.0.0.1:11434/v1 BULWARK_LLM_MODEL=llama3.2`.',
  '',
  'Hosted: set `BULWARK_LLM_PROVIDER=openai` (or `anthropic`), `BULWARK_LLM_MODEL` (e.g. `gpt-4o-mini`, `claude-sonnet-4-5`) and `BULWARK_LLM_API_KEY`.',
  '',
  'Then restart Bulwark; `bulwark doctor` checks the model is reachable.',
].join('\n');

/**
 * Builds the AI SDK model for the configured provider, or undefined when none is configured.
 * The OpenAI provider uses the Chat Completions API so that OpenAI-compatible gateways work with it too.
 */
export function createModel(llm: LlmConfig, guard?: ContextGuard): LanguageModel | undefined {
  const model = providerModel(llm);
  return model && guard ? guardModel(model, guard) : model;
}

/** The providers' model type (what wrapLanguageModel takes), without importing @ai-sdk/provider directly. */
type LanguageModelV3 = Parameters<typeof wrapLanguageModel>[0]['model'];

/** Checks text on its way to the provider; returns it with leaks redacted and how many were found. */
export type ContextGuard = (text: string) => Promise<{ text: string; findings: unknown[] }>;

/** Applies `fn` to every string in a JSON-like value (prompt messages, tool inputs and results). */
async function mapStrings(value: unknown, fn: (s: string) => Promise<string>): Promise<unknown> {
  if (typeof value === 'string') return fn(value);
  if (Array.isArray(value)) return Promise.all(value.map((v) => mapStrings(v, fn)));
  if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = await mapStrings(v, fn);
    return out;
  }
  return value;
}

/**
 * Everything sent to the provider passes the leak detector: the system prompt, every message, tool
 * calls and tool results (sandbox output included), for chat turns and routines alike, because the
 * check sits on the model itself rather than in each caller.
 */
function guardModel(model: LanguageModelV3, guard: ContextGuard): LanguageModelV3 {
  return wrapLanguageModel({
    model,
    middleware: {
      specificationVersion: 'v3',
      transformParams: async ({ params }) => ({ ...params, prompt: (await mapStrings(params.prompt, async (s) => (await guard(s)).text)) as typeof params.prompt }),
    },
  });
}

function providerModel(llm: LlmConfig): LanguageModelV3 | undefined {
  if (!llm.provider || !llm.model) return undefined;
  const baseURL = llm.base_url;
  switch (llm.provider) {
    case 'openai':
      return createOpenAI({ apiKey: llm.api_key ?? 'unset', ...(baseURL ? { baseURL } : {}) }).chat(llm.model);
    case 'anthropic':
      return createAnthropic({ apiKey: llm.api_key ?? 'unset', ...(baseURL ? { baseURL } : {}) })(llm.model);
    case 'openai-compatible':
      return createOpenAICompatible({
        name: 'openai-compatible',
        baseURL: baseURL!,
        ...(llm.api_key ? { apiKey: llm.api_key } : {}),
        includeUsage: true,
        // Structured output (the heartbeat's verdict) is sent as a JSON schema; Ollama, vLLM and
        // llama.cpp server accept it, and the reply is validated against the schema either way.
        supportsStructuredOutputs: true,
      }).chatModel(llm.model);
  }
}

/** A short description for logs and `bulwark status`; never includes the key. */
export function describeModel(llm: LlmConfig): string {
  if (!llm.provider) return 'not configured';
  return `${llm.provider}:${llm.model}${llm.base_url ? ` @ ${llm.base_url}` : ''}`;
}
