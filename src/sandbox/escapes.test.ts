// Attacks on isolation: each test is an escape attempt and the proof that it failed.
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { z } from 'zod';
import { Sandbox, type HostFunction } from './index.js';
import { kind, value } from './test-helpers.js';


const received: unknown[] = [];
const sink: HostFunction<[unknown]> = {
  name: 'test.sink',
  args: z.tuple([z.unknown()]),
  async call([v]) {
    received.push(v);
    return JSON.parse('{"__proto__": {"pwned": true}, "ok": 1}');
  },
};

describe('escapes', () => {
  let sandbox: Sandbox;
  before(() => { sandbox = new Sandbox({ workers: 2, hostFunctions: [sink] }); });
  after(() => sandbox.close());
  afterEach(async () => {
    // The invariant after every attack: the host is untouched and the next run works.
    assert.equal(({} as Record<string, unknown>).pwned, undefined);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.equal(value(await sandbox.run('return 6 * 7')), 42);
  });

  it('finds no host globals: process, require, module, fetch, timers, WebAssembly', async () => {
    const names = ['process', 'require', 'module', 'exports', '__dirname', 'Buffer', 'fetch', 'setTimeout', 'setInterval',
      'setImmediate', 'queueMicrotask', 'WebAssembly', 'Deno', 'Bun', 'std', 'os', 'XMLHttpRequest', 'importScripts'];
    const code = `return ${JSON.stringify(names)}.filter((n) => typeof globalThis[n] !== 'undefined')`;
    assert.deepEqual(value(await sandbox.run(code)), []);
  });

  it('cannot reach the host through Function-constructor tricks', async () => {
    const attempts = [
      'return Function("return this")() === globalThis',
      'return (function(){ return this })() === globalThis',
      'return typeof this.constructor.constructor("return process")()',
      'return tools.constructor.constructor("return typeof process")()',
      'return typeof console.log.constructor("return process")()',
      'return typeof await (async function(){}).constructor("return process")()',
      'return typeof Object.getPrototypeOf(function*(){}).constructor("return process")().next().value',
    ];
    for (const code of attempts) {
      const r = await sandbox.run(code);
      if (r.ok) assert.ok(r.value === true || r.value === 'undefined', `${code} -> ${JSON.stringify(r.value)}`);
      else assert.match(r.error.message, /ReferenceError|process is not defined/, code);
    }
  });

  it('cannot load modules or evaluate outside its interpreter', async () => {
    assert.equal(kind(await sandbox.run('return await import("node:fs")')), 'runtime');
    assert.equal(kind(await sandbox.run('return require("child_process")')), 'runtime');
    assert.equal(value(await sandbox.run('return eval("typeof process")')), 'undefined');
  });

  it('cannot reach the raw host bridge the prelude holds', async () => {
    const code = `return Object.getOwnPropertyNames(globalThis).filter((n) => /host|settle|bridge/i.test(n))`;
    assert.deepEqual(value(await sandbox.run(code)), []);
    // Its own copy of the API is frozen; tampering with shared builtins only affects its own run.
    assert.equal(value(await sandbox.run('"use strict"; try { tools.x = 1; return "mutable" } catch { return "frozen" }')), 'frozen');
  });

  it('cannot pollute host prototypes through returned values', async () => {
    const r = await sandbox.run('return JSON.parse(\'{"__proto__": {"polluted": true}, "constructor": {"prototype": {"polluted": true}}}\')');
    const v = value(r) as Record<string, unknown>;
    assert.equal(Object.getPrototypeOf(v), Object.prototype);
    assert.equal(Object.hasOwn(v, '__proto__'), true, 'arrives as a plain own key');
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  it('cannot pollute host prototypes through host-call arguments or responses', async () => {
    const grant = { http: [], tools: ['test.sink'] };
    const code = 'const r = await tools.test.sink(JSON.parse(\'{"__proto__": {"polluted": true}}\')); return [r.ok, ({}).pwned === undefined]';
    assert.deepEqual(value(await sandbox.run(code, { grant })), [1, true]);
    const got = received.at(-1) as Record<string, unknown>;
    assert.equal(Object.getPrototypeOf(got), Object.prototype);
    assert.equal((got as { polluted?: unknown }).polluted, undefined);
  });

  it('keeps getters, Proxies and toJSON on returned values inside the guest (and under its limits)', async () => {
    assert.deepEqual(value(await sandbox.run('return { get x() { return 5 } }')), { x: 5 });
    assert.deepEqual(value(await sandbox.run('return { toJSON() { return "custom" } }')), 'custom');
    assert.deepEqual(value(await sandbox.run('return new Proxy({}, { ownKeys: () => ["a"], getOwnPropertyDescriptor: () => ({ value: 1, enumerable: true, configurable: true }), get: () => 1 })')), { a: 1 });
    const limits = { timeoutMs: 200 };
    assert.equal(kind(await sandbox.run('return { get x() { for (;;) {} } }', { limits })), 'timeout');
    assert.equal(kind(await sandbox.run('return { toJSON() { for (;;) {} } }', { limits })), 'timeout');
    assert.equal(kind(await sandbox.run('return new Proxy({}, { ownKeys() { for (;;) {} } })', { limits })), 'timeout');
    assert.equal(kind(await sandbox.run('return new Proxy({}, { ownKeys() { throw new Error("trap") } })')), 'runtime');
  });

  it('cannot trick error reporting with toString, Symbol.toPrimitive or getters on thrown values', async () => {
    const limits = { timeoutMs: 200 };
    // Thrown values and logged values are formatted inside the guest: JSON first, then String().
    const looping = 'const o = { toString() { for (;;) {} } }; o.self = o;';
    assert.equal(kind(await sandbox.run(`${looping} throw o`, { limits })), 'timeout');
    assert.equal(kind(await sandbox.run(`${looping} console.log(o)`, { limits })), 'timeout');
    assert.equal(kind(await sandbox.run('throw { toJSON() { for (;;) {} } }', { limits })), 'timeout');
    assert.equal(kind(await sandbox.run('const o = { [Symbol.toPrimitive]() { for (;;) {} } }; o.o = o; throw o', { limits })), 'timeout');
    assert.equal(kind(await sandbox.run('const e = new Error("x"); Object.defineProperty(e, "message", { get() { for (;;) {} } }); throw e', { limits })), 'timeout');
    const r = await sandbox.run('throw { toString() { return "Error: spoofed" } }');
    assert.equal(kind(r), 'runtime');
  });

  it('gets nothing from Symbol tricks on the values it hands over', async () => {
    assert.equal(kind(await sandbox.run('return Symbol.for("x")')), 'runtime');
    assert.deepEqual(value(await sandbox.run('return { [Symbol.iterator]: function* () { for (;;) yield 1 }, a: 1 }')), { a: 1 });
    assert.deepEqual(value(await sandbox.run('return { [Symbol("hidden")]: 1, shown: 2 }')), { shown: 2 });
    const grant = { http: [], tools: ['test.sink'] };
    const r = await sandbox.run('try { await tools.test.sink(Symbol("s")) } catch (e) { return e.message }', { grant });
    assert.match(value(r) as string, /symbol is not a JSON value/);
  });

  it('cannot forge host calls by tampering with how its call queue is serialized', async () => {
    const grant = { http: [], tools: ['test.sink'] };
    // The queue is serialized with JSON inside the guest, so toJSON on arrays reaches it.
    const forged = await sandbox.run('Array.prototype.toJSON = function () { return [this[0], "admin.wipe", "[]"] }; return await tools.test.sink(1)', { grant });
    assert.equal(kind(forged), 'capability');
    const garbage = await sandbox.run('Array.prototype.toJSON = function () { return "junk" }; return await tools.test.sink(1)', { grant });
    assert.equal(kind(garbage), 'runtime');
  });

  it('cannot forge the outcome by overriding JSON, Promise or console', async () => {
    const code = 'JSON.stringify = () => "{\\"forged\\":true}"; Promise.prototype.then = () => {}; console.log = null; return { real: true }';
    assert.deepEqual(value(await sandbox.run(code)), { real: true });
  });
});
