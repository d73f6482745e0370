import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createInterpreter, newHeap, scrubHeap } from './interpreter.js';
import { compileQuickJS } from './worker-pool.js';

describe('interpreter heaps', () => {
  it('scrubs every dirty chunk of a used heap to zero', () => {
    const heap = newHeap(16);
    const bytes = new Uint8Array(heap.buffer);
    bytes[0] = 1;
    bytes[5 * 65536 + 7] = 0xff;
    bytes[bytes.length - 1] = 42;
    assert.equal(scrubHeap(heap), true);
    assert.equal(bytes.some((b) => b !== 0), false);
  });

  it('refuses to recycle a heap that was dirtied beyond the limit', () => {
    const heap = newHeap(16);
    new Uint8Array(heap.buffer).fill(7, 0, 3 * 65536);
    assert.equal(scrubHeap(heap, 2 * 65536), false);
  });

  it('runs a new interpreter on a scrubbed heap, with no trace of the previous one', async () => {
    const wasmModule = await compileQuickJS();
    const first = await createInterpreter(wasmModule, 16);
    first.context.evalCode('globalThis.secret = "hunter2".repeat(1000)').dispose();
    assert.equal(Buffer.from(first.memory.buffer).includes('hunter2'), true);
    assert.equal(scrubHeap(first.memory), true);
    assert.equal(Buffer.from(first.memory.buffer).includes('hunter2'), false);
    const second = await createInterpreter(wasmModule, 16, first.memory);
    const r = second.context.evalCode('typeof secret + ":" + (6 * 7)');
    assert.equal(second.context.dump(second.context.unwrapResult(r)), 'undefined:42');
  });
});
