// Attacks on resources: each test is an attack and the proof that it ended with a typed error
// while the host stayed healthy.
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { z } from 'zod';
import { Sandbox, type HostFunction } from './index.js';
import { kind, value } from './test-helpers.js';


let pings = 0;
const ping: HostFunction<[unknown?]> = {
  name: 'test.ping',
  args: z.tuple([z.unknown().optional()]),
  async call([arg]) {
    pings++;
    return arg === 'big' ? 'z'.repeat(300_000) : 'pong';
  },
};
const grant = { http: [], tools: ['test.ping'] };
const fast = { timeoutMs: 300 };
// Attacks that must end on another limit (memory, stack, output) get a deadline far beyond what they
// need: the interpreter threads run at lowered priority, so on a busy machine the default 2 s
// deadline could win the race and the test would see `timeout` instead of the limit it checks.
const ROOMY = { timeoutMs: 30_000 };

describe('resource limits', () => {
  let sandbox: Sandbox;
  before(() => { sandbox = new Sandbox({ workers: 4, hostFunctions: [ping] }); });
  after(() => sandbox.close());
  afterEach(async () => {
    assert.equal(value(await sandbox.run('return "alive"')), 'alive');
  });

  it('ends infinite loops: plain, in promise jobs, in regex backtracking', async () => {
    assert.equal(kind(await sandbox.run('for (;;) {}', { limits: fast })), 'timeout');
    assert.equal(kind(await sandbox.run('while (true) { try { for (;;) {} } catch {} }', { limits: fast })), 'timeout');
    assert.equal(kind(await sandbox.run('await Promise.resolve().then(() => { for (;;) {} })', { limits: fast })), 'timeout');
    assert.equal(kind(await sandbox.run('Promise.resolve().then(() => { for (;;) {} }); return 1', { limits: fast })), 'timeout');
    assert.equal(kind(await sandbox.run('return /(a+)+$/.test("a".repeat(40) + "b")', { limits: fast })), 'timeout');
    // QuickJS turns an interrupt inside an async function into a rejection the loop ignores;
    // the host's watchdog ends it anyway.
    assert.equal(kind(await sandbox.run('async function f() { for (let i = 0; i < 1e5; i++); } for (;;) f()', { limits: fast })), 'timeout');
  });

  it('kills and replaces an interpreter stuck in a native call that never checks the deadline', async () => {
    // A sparse join of 2^32-1 holes runs in C without polling the interrupt handler.
    const r = await sandbox.run('return new Array(2 ** 32 - 1).join("").length', { limits: fast });
    assert.equal(kind(r), 'timeout');
    assert.match(r.ok ? '' : r.error.message, /terminated/);
  });

  it('caps total memory: one big allocation, many small ones, strings, pending jobs', async () => {
    assert.equal(kind(await sandbox.run('return new ArrayBuffer(100 << 20).byteLength', { limits: ROOMY })), 'memory');
    assert.equal(kind(await sandbox.run('const a = []; for (;;) a.push({ n: a.length })', { limits: ROOMY })), 'memory');
    assert.equal(kind(await sandbox.run('const a = []; for (;;) a.push("y".repeat(1000) + a.length)', { limits: ROOMY })), 'memory');
    assert.equal(kind(await sandbox.run('const m = new Map(); for (let i = 0; ; i++) m.set(i, [i])', { limits: { ...ROOMY, memoryMb: 16 } })), 'memory');
    assert.equal(kind(await sandbox.run('Promise.resolve().then(function loop() { return Promise.resolve().then(loop) }); await new Promise(() => {})', { limits: ROOMY })), 'memory');
    const r = await sandbox.run('const a = []; try { for (;;) a.push([a.length]) } catch (e) { return "caught " + e.message }', { limits: ROOMY });
    // Catching the OOM is allowed; the guest still cannot get past the cap.
    if (r.ok) assert.match(String(r.value), /out of memory/);
    else assert.equal(r.error.kind, 'memory');
    assert.ok(r.stats.memoryBytes <= 32 * 1024 * 1024);
  });

  it('ends deep recursion with a stack error', async () => {
    assert.equal(kind(await sandbox.run('function f() { return f() + 1 } return f()', { limits: ROOMY })), 'stack');
    assert.equal(kind(await sandbox.run('const a = []; let c = a; for (let i = 0; i < 1e5; i++) { const n = []; c.push(n); c = n } return String(a).length', { limits: ROOMY })), 'stack');
    assert.equal(kind(await sandbox.run('async function f() { return await f() } return await f()', { limits: ROOMY })), 'stack');
    assert.equal(kind(await sandbox.run('return JSON.parse("[".repeat(1e5) + "]".repeat(1e5))', { limits: ROOMY })), 'stack');
    // The largest allowed stack still ends in a clean error, well inside the worker thread's own stack.
    assert.equal(kind(await sandbox.run('function f() { return f() + 1 } return f()', { limits: { ...ROOMY, stackKb: 1024 } })), 'stack');
    assert.equal(value(await sandbox.run('function f(n) { return n ? 1 + f(n - 1) : 0 } return f(500)', { limits: ROOMY })), 500);
  });

  it('caps output: console floods and oversized results', async () => {
    const flood = await sandbox.run('for (;;) console.log("x".repeat(1000))', { limits: ROOMY });
    assert.equal(kind(flood), 'output');
    const logged = flood.logs.reduce((n, l) => n + Buffer.byteLength(l) + 1, 0);
    assert.ok(logged <= 64 * 1024, `kept ${logged} bytes of logs`);
    assert.equal(kind(await sandbox.run('for (;;) console.log()', { limits: ROOMY })), 'output');
    assert.equal(kind(await sandbox.run('return "x".repeat(1e6)', { limits: ROOMY })), 'output');
    assert.equal(kind(await sandbox.run('return "x".repeat(5000)', { limits: { ...ROOMY, outputBytes: 4096 } })), 'output');
  });

  it('caps host calls: floods with and without await, huge arguments, huge responses', async () => {
    assert.equal(kind(await sandbox.run('for (;;) await tools.test.ping()', { grant })), 'host_calls');
    const before = pings;
    assert.equal(kind(await sandbox.run('for (;;) tools.test.ping()', { grant })), 'host_calls');
    assert.ok(pings - before <= 100, `the host served ${pings - before} calls`);
    assert.equal(kind(await sandbox.run('await tools.test.ping("x".repeat(1e6))', { grant })), 'host_calls');
    assert.equal(kind(await sandbox.run('await tools.test.ping("big")', { grant })), 'host_calls');
    assert.equal(kind(await sandbox.run('await tools.test.ping(1); await tools.test.ping(2)', { grant, limits: { hostCalls: 1 } })), 'host_calls');
  });

  it('survives reentrancy: host calls and logs from inside marshalling', async () => {
    const nested = await sandbox.run('return await tools.test.ping({ toJSON() { tools.test.ping(); console.log("inner"); return 1 } })', { grant });
    assert.equal(value(nested), 'pong');
    assert.equal(nested.stats.hostCalls, 2);
    assert.deepEqual(nested.logs, ['inner']);
    const log = await sandbox.run('console.log({ toJSON() { console.log("first"); return "second" } }); return 1');
    assert.deepEqual(log.logs, ['first', '"second"']);
    // A host call started while the result is being serialized: the run ends; the late reply is dropped.
    assert.deepEqual(value(await sandbox.run('return { get x() { tools.test.ping(); return 1 } }', { grant })), { x: 1 });
  });

  it('reports a promise that can never settle instead of hanging', async () => {
    assert.equal(kind(await sandbox.run('await new Promise(() => {})')), 'runtime');
    assert.equal(kind(await sandbox.run('return new Promise(() => {})')), 'runtime');
  });

  it('runs many guests in parallel, each with its own answer', async () => {
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => sandbox.run(`return ${i} * 2`)));
    assert.deepEqual(results.map(value), Array.from({ length: 40 }, (_, i) => i * 2));
  });

  it('does not let guests spinning at their CPU limit delay another run', async () => {
    const order: string[] = [];
    const spin = (n: number) => sandbox.run('for (;;) {}', { limits: { timeoutMs: 1500 } }).then((r) => { order.push(`spin${n}`); return r; });
    const spinners = [spin(1), spin(2)];
    const quick = await sandbox.run('return "quick"').then((r) => { order.push('quick'); return r; });
    assert.equal(value(quick), 'quick');
    for (const r of await Promise.all(spinners)) assert.equal(kind(r), 'timeout');
    assert.deepEqual(order.slice(0, 1), ['quick']);
  });
});
