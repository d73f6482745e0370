// The host re-checks every host call as if the worker were compromised: these calls arrive the way
// a forged worker message would, skipping the worker's own checks.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { z } from 'zod';
import { checkQueuedCalls } from './host-call-queue.js';
import { HostCallError, HostCallSession, type HostFunction } from './host-calls.js';
import { DEFAULT_LIMITS } from './limits.js';
import { SandboxBreach } from './result.js';

const echo: HostFunction<[string]> = {
  name: 'memory.echo',
  args: z.tuple([z.string()]),
  async call([s]) {
    if (s === 'breach') throw new SandboxBreach('capability', 'not for you');
    if (s === 'soft') throw new HostCallError('try again');
    if (s === 'big') return 'b'.repeat(2000);
    return s.toUpperCase();
  },
};
const admin: HostFunction<[]> = { name: 'admin.wipe', args: z.tuple([]), async call() { throw new Error('must never run'); } };
const functions = new Map<string, HostFunction<any>>([[echo.name, echo], [admin.name, admin]]);

function session(limits = {}) {
  return new HostCallSession({ grant: { http: [], tools: ['memory.echo'] }, limits: { ...DEFAULT_LIMITS, ...limits }, functions });
}

describe('HostCallSession', () => {
  it('serves granted calls with JSON in and out', async () => {
    assert.deepEqual(await session().handle('memory.echo', '["hi"]'), { ok: true, value: '"HI"' });
  });

  it('refuses a registered but ungranted function, and unknown names', async () => {
    const s = session();
    assert.deepEqual(await s.handle('admin.wipe', '[]'), { ok: false, fatal: { kind: 'capability', message: 'tools.admin.wipe is not granted to this run' } });
    assert.equal((await s.handle('http.fetch', '["https://x"]') as { fatal?: { kind: string } }).fatal?.kind, 'capability');
    assert.equal((await s.handle('__proto__', '[]') as { fatal?: { kind: string } }).fatal?.kind, 'capability');
  });

  it('counts calls and sizes itself', async () => {
    const s = session({ hostCalls: 2, hostCallBytes: 1024 });
    assert.equal((await s.handle('memory.echo', '["a"]')).ok, true);
    assert.equal((await s.handle('memory.echo', `["${'x'.repeat(2000)}"]`) as { fatal?: { kind: string } }).fatal?.kind, 'host_calls');
    assert.equal((await s.handle('memory.echo', '["a"]') as { fatal?: { kind: string } }).fatal?.kind, 'host_calls');
    assert.equal(s.callCount, 3);
  });

  it('bounds responses and validates arguments', async () => {
    const s = session({ hostCallBytes: 1024 });
    assert.equal((await s.handle('memory.echo', '["big"]') as { fatal?: { kind: string } }).fatal?.kind, 'host_calls');
    assert.equal((await s.handle('memory.echo', 'not json') as { fatal?: { kind: string } }).fatal?.kind, 'host_calls');
    const invalid = await s.handle('memory.echo', '[1, 2]');
    assert.equal(invalid.ok, false);
    assert.match((invalid as { message: string }).message, /invalid arguments/);
  });

  it('maps breaches to fatal errors and other failures to catchable ones', async () => {
    const s = session();
    assert.deepEqual(await s.handle('memory.echo', '["breach"]'), { ok: false, fatal: { kind: 'capability', message: 'not for you' } });
    assert.deepEqual(await s.handle('memory.echo', '["soft"]'), { ok: false, message: 'try again' });
  });

  it('refuses calls after the run ended', async () => {
    const s = session();
    s.close();
    assert.deepEqual(await s.handle('memory.echo', '["late"]'), { ok: false, message: 'the run has ended' });
  });
});

describe('checkQueuedCalls (the worker\'s check of a guest\'s queued calls)', () => {
  const base = { limits: { ...DEFAULT_LIMITS, hostCalls: 3, hostCallBytes: 100 }, functions: new Set(['memory.echo']), pending: new Set([7]), callsSoFar: 0 };

  it('passes well-formed calls through', () => {
    const { calls, error } = checkQueuedCalls('{"0":[1,"memory.echo","[\\"a\\"]"]}', base);
    assert.equal(error, undefined);
    assert.deepEqual(calls, [{ callId: 1, name: 'memory.echo', args: '["a"]' }]);
  });

  it('treats anything malformed as a corrupted queue', () => {
    for (const text of ['not json', '"str"', 'null', '{"0":[1,"memory.echo"]}', '{"0":["1","memory.echo","[]"]}', '{"0":[7,"memory.echo","[]"]}', '{"0":[1,"memory.echo","[]"],"1":[1,"memory.echo","[]"]}', '{"0":[1.5,"memory.echo","[]"]}']) {
      assert.equal(checkQueuedCalls(text, base).error?.kind, 'runtime', text);
    }
  });

  it('enforces the grant, the call budget and the argument size', () => {
    assert.equal(checkQueuedCalls('{"0":[1,"admin.wipe","[]"]}', base).error?.kind, 'capability');
    assert.equal(checkQueuedCalls('{"0":[1,"memory.echo","[]"]}', { ...base, callsSoFar: 3 }).error?.kind, 'host_calls');
    assert.equal(checkQueuedCalls(`{"0":[1,"memory.echo","${'x'.repeat(101)}"]}`, base).error?.kind, 'host_calls');
  });
});
