import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { silentLogger } from '../logger.js';
import { ToolRegistry, type ToolContext } from '../agent/tools.js';
import { Sandbox } from './index.js';
import { createRunCodeTool, SANDBOX_SYSTEM_PROMPT, truncateResult } from './run-code-tool.js';

const ctx = (signal = new AbortController().signal): ToolContext => ({ conversationId: 'c1', signal, logger: silentLogger() });

describe('run_code tool', () => {
  let sandbox: Sandbox;
  before(() => { sandbox = new Sandbox({ workers: 2 }); });
  after(() => sandbox.close());

  it('registers as an agent tool and validates its input', () => {
    const tool = createRunCodeTool({ sandbox, grant: { http: ['api.github.com'], tools: [] } });
    new ToolRegistry().register(tool);
    assert.equal(tool.name, 'run_code');
    assert.match(tool.description, /api\.github\.com/);
    assert.equal(tool.inputSchema.safeParse({ code: 'return 1' }).success, true);
    assert.equal(tool.inputSchema.safeParse({ code: 42 }).success, false);
  });

  it('returns {ok, value, logs, stats} for a good run and a typed error for a bad one', async () => {
    const tool = createRunCodeTool({ sandbox, grant: { http: [], tools: [] } });
    const good = await tool.execute({ code: 'console.log("step"); return [1, 2]' }, ctx()) as Record<string, unknown>;
    assert.equal(good.ok, true);
    assert.deepEqual(good.value, [1, 2]);
    assert.deepEqual(good.logs, ['step']);
    assert.equal(typeof (good.stats as { durationMs: number }).durationMs, 'number');
    const bad = await tool.execute({ code: 'for (;;) {}' }, ctx(AbortSignal.timeout(100))) as Record<string, unknown>;
    assert.equal(bad.ok, false);
    assert.equal((bad.error as { kind: string }).kind, 'cancelled');
    const limited = createRunCodeTool({ sandbox, grant: { http: [], tools: [] }, limits: { timeoutMs: 100 } });
    assert.equal(((await limited.execute({ code: 'for (;;) {}' }, ctx())) as { error: { kind: string } }).error.kind, 'timeout');
  });

  it('truncates what goes back to the model', () => {
    const stats = { durationMs: 1.23456, hostCalls: 0, outputBytes: 0, memoryBytes: 0 };
    const big = truncateResult({ ok: true, value: 'v'.repeat(50_000), logs: Array(1000).fill('log line'), stats }, 4000);
    assert.ok(JSON.stringify(big).length < 4500, `${JSON.stringify(big).length} characters`);
    assert.match(String(big.valueTruncated), /50002 characters/);
    assert.match(String((big.logs as string[]).at(-1)), /more log lines not shown/);
    assert.equal((big.stats as { durationMs: number }).durationMs, 1.23);
  });

  it('tells the model the host API and that output is untrusted', () => {
    assert.match(SANDBOX_SYSTEM_PROMPT, /tools\.http\.fetch/);
    assert.match(SANDBOX_SYSTEM_PROMPT, /untrusted data/);
  });
});
