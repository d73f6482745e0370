import { createAnthropic } from '@ai-sdk/anthropic';
import { createOpenAI } from '@ai-sdk/openai';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import type { LanguageModel } from 'ai';
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
export function createModel(llm: LlmConfig): LanguageModel | undefined {
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
