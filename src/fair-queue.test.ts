import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { FairQueue } from './fair-queue.js';

describe('FairQueue', () => {
  it('serves owners in turn, each owner in order, so one long line does not starve a single item', () => {
    const q = new FairQueue<string>({ maxRunning: 10, maxQueued: 100 });
    for (let i = 0; i < 5; i++) q.push('a', `a${i}`);
    q.push('b', 'b0');
    q.push('c', 'c0');
    const order = Array.from({ length: 7 }, () => q.take()!.item);
    assert.deepEqual(order, ['b0', 'c0', 'a0', 'a1', 'a2', 'a3', 'a4']);
    assert.equal(q.take(), undefined);
  });

  it('skips an owner at its running cap until one of its items is done', () => {
    const q = new FairQueue<string>({ maxRunning: 1, maxQueued: 100 });
    q.push('a', 'a0'); q.push('a', 'a1'); q.push('b', 'b0');
    assert.equal(q.take()!.item, 'b0', 'b asks for less');
    const a0 = q.take()!;
    assert.equal(a0.item, 'a0');
    assert.equal(q.take(), undefined, 'a already runs one');
    a0.done();
    assert.equal(q.take()!.item, 'a1');
  });

  it('refuses an item beyond the owner\'s queue cap, and only for that owner', () => {
    const q = new FairQueue<number>({ maxRunning: 1, maxQueued: 2 });
    assert.equal(q.push('a', 1), true);
    assert.equal(q.push('a', 2), true);
    assert.equal(q.push('a', 3), false);
    assert.equal(q.push('b', 4), true);
    assert.equal(q.size, 3);
    assert.equal(q.remove('a', 1), true);
    assert.equal(q.remove('a', 1), false);
    assert.equal(q.push('a', 5), true);
    assert.deepEqual(q.drain().sort(), [2, 4, 5]);
    assert.equal(q.size, 0);
  });
});

describe('FairQueue usage', () => {
  it('serves the owner that used the resource least lately first (running time counts), and lets usage fade', () => {
    let clock = 0;
    const q = new FairQueue<string>({ maxRunning: 10, maxQueued: 100, halfLifeMs: 1000, now: () => clock });
    q.push('busy', 'b0');
    const b0 = q.take()!;
    clock += 2000;
    q.push('busy', 'b1');
    q.push('quiet', 'q0');
    const q0 = q.take()!;
    assert.equal(q0.item, 'q0', 'busy has held a worker for 2 s and still does: quiet goes first');
    b0.done();
    const b1 = q.take()!;
    assert.equal(b1.item, 'b1');
    q0.done();
    b1.done();
    q.push('busy', 'b2');
    q.push('quiet', 'q1');
    assert.equal(q.take()!.item, 'q1', 'busy used 2 s, quiet almost nothing');
    clock += 12_000;
    q.push('new', 'n0');
    assert.equal(q.take()!.item, 'b2', 'twelve half-lives later busy\'s usage has faded: plain turn order');
    assert.equal(q.take()!.item, 'n0');
  });
});
