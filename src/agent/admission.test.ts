import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { llmSchema } from '../config/schema.js';
import { silentLogger } from '../logger.js';
import { startLlmStandIn, type StandIn } from '../../test/support/llm-standin.js';
import { LlmSlots, type LlmAdmission } from './admission.js';
import { CircuitBreaker } from './breaker.js';
import { createModel } from './llm.js';
import { LlmUnavailableError, runTurn } from './loop.js';
import { ToolRegistry } from './tools.js';

describe('LLM admission: fair slots and the circuit breaker (real HTTP stand-in)', () => {
  let llm: StandIn;
  let healthy = false;
  before(async () => { llm = await startLlmStandIn(() => (healthy ? { text: 'fine' } : { status: 503 })); });
  after(async () => { await llm?.close(); });

  const model = () => createModel(llmSchema.parse({ provider: 'openai-compatible', base_url: llm.baseUrl, model: 'standin-model' }))!;
  const turn = (admission: LlmAdmission, stream = false) => runTurn({
    model: model(), system: 'test', messages: [{ role: 'user', content: 'hi' }], tools: new ToolRegistry(),
    limits: { maxSteps: 1, maxTokens: 1000, stepTimeoutMs: 10_000, maxRetries: 0 }, stream,
    conversationId: 'c1', signal: new AbortController().signal, logger: silentLogger(), admission,
  });

  it('opens after N failed calls in a row: calls fail fast and the model sees nothing during the cool-down; a probe closes it', async () => {
    let clock = 1_000_000;
    const breaker = new CircuitBreaker({ failures: 3, cooldownMs: 60_000, now: () => clock });
    const admission = { slots: new LlmSlots(4), breaker };
    healthy = false;
    const start = llm.requests.length;
    for (let i = 0; i < 3; i++) await assert.rejects(turn(admission, i === 2), LlmUnavailableError);
    assert.equal(llm.requests.length - start, 3);
    assert.equal(breaker.state, 'open');
    for (let i = 0; i < 5; i++) {
      await assert.rejects(turn(admission, i % 2 === 1), (err: unknown) => err instanceof LlmUnavailableError && /paused/.test(err.causeMessage));
    }
    assert.equal(llm.requests.length - start, 3, 'no request reaches the model while the breaker is open');

    clock += 60_000;
    assert.equal(breaker.state, 'half-open');
    await assert.rejects(turn(admission), LlmUnavailableError, 'a failed probe opens it again');
    assert.equal(llm.requests.length - start, 4);
    await assert.rejects(turn(admission), /paused/);
    assert.equal(llm.requests.length - start, 4);

    clock += 60_000;
    healthy = true;
    assert.equal((await turn(admission)).text, 'fine');
    assert.equal(breaker.state, 'closed');
    assert.equal((await turn(admission, true)).text, 'fine');
  });

  it('a refused request (HTTP 400) does not count against the model', async () => {
    const breaker = new CircuitBreaker({ failures: 1, cooldownMs: 60_000 });
    llm.setHandler(() => ({ status: 400, body: { error: { message: 'bad request', type: 'invalid_request_error' } } }));
    try {
      await assert.rejects(turn({ slots: new LlmSlots(1), breaker }), LlmUnavailableError);
      assert.equal(breaker.state, 'closed');
    } finally {
      llm.setHandler(() => (healthy ? { text: 'fine' } : { status: 503 }));
    }
  });

  it('hands free slots out round-robin across conversations', async () => {
    const slots = new LlmSlots(1);
    const granted: string[] = [];
    const first = await slots.acquire('a');
    const waits = ['a', 'a', 'a', 'b'].map((owner) => slots.acquire(owner).then((release) => { granted.push(owner); release(); }));
    first();
    await Promise.all(waits);
    assert.deepEqual(granted, ['b', 'a', 'a', 'a'], 'b asks for one call, a for three: b is not queued behind them');
  });

  it('a waiting call that is cancelled gives up its place', async () => {
    const slots = new LlmSlots(1);
    const held = await slots.acquire('a');
    const ac = new AbortController();
    const cancelled = slots.acquire('b', ac.signal);
    const next = slots.acquire('c');
    ac.abort(new Error('turn cancelled'));
    await assert.rejects(cancelled, /turn cancelled/);
    held();
    (await next)();
  });
});
