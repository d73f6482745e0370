import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { LlmSlots } from '../agent/admission.js';
import { CircuitBreaker } from '../agent/breaker.js';
import { createModel } from '../agent/llm.js';
import { ToolRegistry } from '../agent/tools.js';
import { llmSchema } from '../config/schema.js';
import { silentLogger } from '../logger.js';
import { Metrics } from '../metrics.js';
import { startLlmStandIn, type StandIn } from '../../test/support/llm-standin.js';
import { heartbeatVerdict, routineTurn, RunFailed } from './turn.js';

describe('LLM admission covers routines and the heartbeat (real HTTP stand-in)', () => {
  let llm: StandIn;
  before(async () => { llm = await startLlmStandIn(() => ({ status: 503 })); });
  after(async () => { await llm?.close(); });

  it('an open breaker fails a routine turn and a heartbeat verdict at once, without a request', async () => {
    const cfg = llmSchema.parse({ provider: 'openai-compatible', base_url: llm.baseUrl, model: 'standin-model', max_retries: 0 });
    const breaker = new CircuitBreaker({ failures: 1, cooldownMs: 60_000 });
    const deps = { model: createModel(cfg)!, llm: cfg, tools: new ToolRegistry(), metrics: new Metrics({ defaults: false }), logger: silentLogger(), admission: { slots: new LlmSlots(4), breaker } };
    const prompt = { system: 'test', prompt: 'check things' };
    const opts = { maxTokens: 1000, conversationId: 'routine-c1', signal: new AbortController().signal };
    await assert.rejects(routineTurn(deps, prompt, opts), RunFailed, 'the first failure opens the breaker');
    assert.equal(breaker.state, 'open');
    const before = llm.requests.length;
    await assert.rejects(routineTurn(deps, prompt, opts), (err: unknown) => err instanceof RunFailed && /paused/.test(err.message));
    await assert.rejects(heartbeatVerdict(deps, prompt, opts), RunFailed);
    assert.equal(llm.requests.length, before, 'neither reached the model');
  });
});
