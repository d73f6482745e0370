import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { silentLogger } from '../logger.js';
import type { ToolContext } from '../agent/tools.js';
import { Sandbox } from './index.js';
import { createRunCodeTool } from './run-code-tool.js';
import { value } from './test-helpers.js';

const spin = { limits: { timeoutMs: 100 } };

describe('sandbox runs are shared fairly between conversations', () => {
  const sandboxes: Sandbox[] = [];
  after(() => Promise.all(sandboxes.map((s) => s.close())));

  it('runs conversation B\'s single run while conversation A still has 60 spinning runs waiting', async () => {
    const sandbox = new Sandbox({ workers: 2, queuedPerOwner: 100 });
    sandboxes.push(sandbox);
    await sandbox.warmup();
    const stop = new AbortController();
    let aFinished = 0;
    const a = Array.from({ length: 60 }, () => sandbox.run('for (;;) {}', { ...spin, owner: 'conv-a', signal: stop.signal }).then((r) => { aFinished++; return r; }));
    const b = await sandbox.run('return 6 * 7', { owner: 'conv-b' });
    const aDoneWhenB = aFinished;
    stop.abort();
    await Promise.all(a);
    assert.equal(value(b), 42);
    assert.ok(aDoneWhenB < 60, `B finished only after all of A's runs (${aDoneWhenB} of 60 done)`);
    assert.ok(aDoneWhenB <= 2, `B waited behind ${aDoneWhenB} of A's runs`);
  });

  it('a quiet conversation\'s run takes the spare worker while every regular worker spins for others', async () => {
    const sandbox = new Sandbox({ workers: 2, spareWorkers: 1, runsPerOwner: 1, queuedPerOwner: 100 });
    sandboxes.push(sandbox);
    await sandbox.warmup();
    // Every worker started and idle, so the two spinning conversations really hold both regular ones.
    await Promise.all(Array.from({ length: 3 }, (_, i) => sandbox.run('return 1', { owner: `warm-${i}` })));
    await new Promise((r) => setTimeout(r, 300));
    const stop = new AbortController();
    let heavyFinished = 0;
    const heavy = ['conv-h1', 'conv-h2'].flatMap((owner) => Array.from({ length: 5 }, () => sandbox.run('for (;;) {}', { limits: { timeoutMs: 2_000 }, owner, signal: stop.signal }).then((r) => { heavyFinished++; return r; })));
    const quiet = await sandbox.run('return 6 * 7', { owner: 'conv-quiet' });
    const heavyDoneWhenQuiet = heavyFinished;
    stop.abort();
    await Promise.all(heavy);
    assert.equal(value(quiet), 42);
    assert.equal(heavyDoneWhenQuiet, 0, 'the quiet run did not wait for a spinning run to end');
  });

  it('a conversation whose last run spun does not get the spare, even with one run waiting', async () => {
    const sandbox = new Sandbox({ workers: 2, spareWorkers: 1, runsPerOwner: 1, queuedPerOwner: 100 });
    sandboxes.push(sandbox);
    await sandbox.warmup();
    await Promise.all(Array.from({ length: 3 }, (_, i) => sandbox.run('return 1', { owner: `warm-${i}` })));
    await sandbox.run('for (;;) {}', { limits: { timeoutMs: 300 }, owner: 'conv-spinner' });
    const stop = new AbortController();
    let heavyFinished = 0;
    const heavy = ['conv-h1', 'conv-h2'].flatMap((owner) => Array.from({ length: 3 }, () => sandbox.run('for (;;) {}', { limits: { timeoutMs: 1_000 }, owner, signal: stop.signal }).then((r) => { heavyFinished++; return r; })));
    await new Promise((r) => setTimeout(r, 100));
    const spinnerAgain = sandbox.run('return "after a wait"', { owner: 'conv-spinner' }).then((r) => ({ r, heavyDone: heavyFinished }));
    const quiet = await sandbox.run('return 6 * 7', { owner: 'conv-quiet' });
    const quietHeavyDone = heavyFinished;
    const again = await spinnerAgain;
    stop.abort();
    await Promise.all(heavy);
    assert.equal(value(quiet), 42);
    assert.equal(quietHeavyDone, 0, 'the quiet conversation still had the spare');
    assert.equal(value(again.r), 'after a wait');
    assert.ok(again.heavyDone >= 1, 'the spinner waited for a regular worker');
  });

  it('refuses a conversation\'s run beyond its queue cap with a clear error, and only for that conversation', async () => {
    const sandbox = new Sandbox({ workers: 1, queuedPerOwner: 2 });
    sandboxes.push(sandbox);
    await sandbox.warmup();
    const tool = createRunCodeTool({ sandbox, grant: { http: [], tools: [] }, limits: { timeoutMs: 100 } });
    const ctx = (conversationId: string): ToolContext => ({ conversationId, signal: new AbortController().signal, logger: silentLogger() });
    const runs = Array.from({ length: 4 }, () => tool.execute({ code: 'for (;;) {}' }, ctx('c1')) as Promise<{ ok: boolean; error?: { kind: string; message: string } }>);
    const other = tool.execute({ code: 'return "c2 ran"' }, ctx('c2')) as Promise<{ ok: boolean; value?: unknown }>;
    const otherResult = await other;
    const results = await Promise.all(runs);
    const refused = results.filter((r) => r.error?.message.includes('too many code runs queued for this conversation'));
    assert.equal(refused.length, 1, JSON.stringify(results));
    assert.equal(results.filter((r) => r.error?.kind === 'timeout').length, 3, 'one running and two queued, each until its own deadline');
    assert.equal(otherResult.ok, true, 'another conversation is not refused');
    assert.equal(otherResult.value, 'c2 ran');
  });
});
