import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { z } from 'zod';
import { HostCallError, Sandbox, type HostFunction, type RunResult } from './index.js';

function expectOk(r: RunResult): unknown {
  assert.equal(r.ok, true, r.ok ? '' : `${r.error.kind}: ${r.error.message}`);
  return r.ok ? r.value : undefined;
}

function expectError(r: RunResult, kind: string): string {
  assert.equal(r.ok, false, `expected a ${kind} error, got ${JSON.stringify(r)}`);
  if (r.ok) return '';
  assert.equal(r.error.kind, kind, r.error.message);
  return r.error.message;
}

// A stand-in for a later capability (memory, approvals): a host function granted per run.
const calls: unknown[] = [];
const echo: HostFunction<[string]> = {
  name: 'memory.echo',
  args: z.tuple([z.string().max(100)]),
  async call([text]) {
    calls.push(text);
    if (text === 'fail') throw new HostCallError('echo refused');
    if (text === 'crash') throw new Error('secret host detail /etc/passwd');
    return { echoed: text };
  },
};

describe('Sandbox: the code convention', () => {
  let sandbox: Sandbox;
  before(() => { sandbox = new Sandbox({ workers: 2, hostFunctions: [echo] }); });
  after(() => sandbox.close());

  it('returns JSON values from the body of an async function', async () => {
    assert.equal(expectOk(await sandbox.run('return 1 + 1')), 2);
    assert.deepEqual(expectOk(await sandbox.run('const a = await Promise.resolve([1, "two", {three: 3}]); return a')), [1, 'two', { three: 3 }]);
    assert.equal(expectOk(await sandbox.run('let x = 1')), null, 'no return gives null');
  });

  it('captures console output next to the result', async () => {
    const r = await sandbox.run('console.log("a", 1, {b: 2}); console.warn("careful"); return "done"');
    assert.equal(expectOk(r), 'done');
    assert.deepEqual(r.logs, ['a 1 {"b":2}', '[warn] careful']);
    assert.ok(r.stats.outputBytes > 0 && r.stats.memoryBytes > 0 && r.stats.durationMs >= 0);
  });

  it('reports guest errors with the guest\'s own line numbers', async () => {
    const message = expectError(await sandbox.run('const x = 1;\nthrow new TypeError("bad input")'), 'runtime');
    assert.match(message, /^TypeError: bad input/);
    assert.match(message, /<code>:2/);
    assert.match(expectError(await sandbox.run('this is not javascript'), 'runtime'), /SyntaxError/);
    assert.match(expectError(await sandbox.run('throw "plain string"'), 'runtime'), /plain string/);
  });

  it('refuses results that are not JSON', async () => {
    for (const code of ['return () => 1', 'return Symbol("s")', 'return 10n', 'return NaN', 'return new Map([[1, 2]])', 'const o = {}; o.o = o; return o']) {
      expectError(await sandbox.run(code), 'runtime');
    }
  });

  it('starts every run from a fresh interpreter: nothing persists', async () => {
    expectOk(await sandbox.run('globalThis.leak = "secret"; Object.prototype.polluted = 1; return 1'));
    assert.deepEqual(expectOk(await sandbox.run('return [typeof leak, typeof ({}).polluted]')), ['undefined', 'undefined']);
  });

  it('exposes only granted host functions, and checks the grant on the host', async () => {
    assert.equal(expectOk(await sandbox.run('return typeof tools.memory')), 'undefined');
    const grant = { http: [], tools: ['memory.echo'] };
    assert.deepEqual(expectOk(await sandbox.run('return await tools.memory.echo("hi")', { grant })), { echoed: 'hi' });
    assert.equal(expectOk(await sandbox.run('return typeof tools.http', { grant })), 'undefined');
  });

  it('turns host-function failures into catchable errors without leaking host details', async () => {
    const grant = { http: [], tools: ['memory.echo'] };
    const code = 'const out = []; for (const t of ["fail", "crash"]) { try { await tools.memory.echo(t) } catch (e) { out.push(e.message) } } return out';
    const [refused, crashed] = expectOk(await sandbox.run(code, { grant })) as string[];
    assert.equal(refused, 'echo refused');
    assert.equal(crashed, 'tools.memory.echo failed (internal error)');
    const invalid = await sandbox.run('try { await tools.memory.echo(42) } catch (e) { return e.message }', { grant });
    assert.match(expectOk(invalid) as string, /invalid arguments/);
  });

  it('rejects caller mistakes instead of running', async () => {
    await assert.rejects(sandbox.run('return 1', { limits: { memoryMb: 4 } }), /memoryMb/);
    await assert.rejects(sandbox.run('return 1', { grant: { http: ['https://x.com/path'], tools: [] } }), /http grant/);
    await assert.rejects(sandbox.run('return 1', { grant: { http: [], tools: ['memory.nothere'] } }), /not registered/);
  });

  it('cancels a run when its signal aborts, even while it computes', async () => {
    const controller = new AbortController();
    const pending = sandbox.run('for (;;) {}', { signal: controller.signal, limits: { timeoutMs: 20_000 } });
    setTimeout(() => controller.abort(), 50);
    expectError(await pending, 'cancelled');
    expectError(await sandbox.run('return 1', { signal: AbortSignal.abort() }), 'cancelled');
    assert.equal(expectOk(await sandbox.run('return "still fine"')), 'still fine');
  });

  it('refuses new runs after close and ends the ones in flight', async () => {
    const own = new Sandbox({ workers: 1 });
    const pending = own.run('for (;;) {}', { limits: { timeoutMs: 20_000 } });
    setTimeout(() => void own.close(), 100);
    expectError(await pending, 'cancelled');
    await assert.rejects(own.run('return 1'), /closed/);
  });
});
