/**
 * Work waiting for a shared resource (LLM call slots, sandbox workers), kept per owner (a
 * conversation) and handed out round-robin: each owner's items in order, owners in turn, so one
 * owner with sixty items waiting cannot make another owner's single item wait behind them.
 * Each owner may have at most `maxRunning` items started and `maxQueued` waiting.
 *
 * Owners that used the resource least lately go first (usage reported with `done`, halving every
 * `halfLifeMs`): a conversation that asks for one short run is not placed behind every
 * conversation that keeps the workers spinning, only behind those that used less than it.
 */
export class FairQueue<T> {
  /** Owners with items waiting, in the order they are served (a served owner moves to the back). */
  private readonly waiting = new Map<string, T[]>();
  private readonly running = new Map<string, number>();
  private readonly usage = new Map<string, { value: number; at: number }>();
  private count = 0;
  private readonly now: () => number;
  private readonly halfLifeMs: number;

  constructor(readonly caps: { maxRunning: number; maxQueued: number; halfLifeMs?: number; now?: () => number }) {
    this.now = caps.now ?? Date.now;
    this.halfLifeMs = caps.halfLifeMs ?? 10_000;
  }

  /** Items waiting, over all owners. */
  get size(): number {
    return this.count;
  }

  queuedFor(owner: string): number {
    return this.waiting.get(owner)?.length ?? 0;
  }

  runningFor(owner: string): number {
    return this.running.get(owner) ?? 0;
  }

  /** Adds an item; false (and nothing added) when the owner already has `maxQueued` waiting. */
  push(owner: string, item: T): boolean {
    const list = this.waiting.get(owner);
    if ((list?.length ?? 0) >= this.caps.maxQueued) return false;
    if (list) list.push(item);
    else this.waiting.set(owner, [item]);
    this.count++;
    return true;
  }

  /** Removes an item that has not been taken yet; false if it is not waiting. */
  remove(owner: string, item: T): boolean {
    const list = this.waiting.get(owner);
    const i = list?.indexOf(item) ?? -1;
    if (!list || i < 0) return false;
    list.splice(i, 1);
    if (list.length === 0) this.waiting.delete(owner);
    this.count--;
    return true;
  }

  /**
   * The next item to start: among owners below their running cap, the one that used least lately
   * (first in turn among equals) gives its oldest item and goes to the back of the line. The
   * caller calls `done(owner, cost)` when it ends.
   */
  take(): { owner: string; item: T } | undefined {
    const now = this.now();
    let best: string | undefined;
    let bestUsage = Number.POSITIVE_INFINITY;
    for (const owner of this.waiting.keys()) {
      if (this.runningFor(owner) >= this.caps.maxRunning) continue;
      const u = this.usageOf(owner, now);
      if (u < bestUsage) { best = owner; bestUsage = u; }
      if (u === 0) break;
    }
    if (best === undefined) return undefined;
    const list = this.waiting.get(best)!;
    const item = list.shift()!;
    this.waiting.delete(best);
    if (list.length > 0) this.waiting.set(best, list);
    this.count--;
    this.running.set(best, this.runningFor(best) + 1);
    return { owner: best, item };
  }

  /** An item handed out by `take` has finished; `cost` is what it used (e.g. milliseconds of a worker). */
  done(owner: string, cost = 0): void {
    const n = this.runningFor(owner) - 1;
    if (n > 0) this.running.set(owner, n);
    else this.running.delete(owner);
    const now = this.now();
    const value = this.usageOf(owner, now) + cost;
    if (value > 0) this.usage.set(owner, { value, at: now });
    // Forget owners whose usage has faded, so the map does not grow with every conversation ever seen.
    if (this.usage.size > 1024) for (const [o] of this.usage) if (this.usageOf(o, now) < 1) this.usage.delete(o);
  }

  private usageOf(owner: string, now: number): number {
    const u = this.usage.get(owner);
    const v = u ? u.value * 2 ** (-(now - u.at) / this.halfLifeMs) : 0;
    // Below one unit (a millisecond of a worker) owners count as equal and take plain turns.
    return v < 1 ? 0 : v;
  }

  /** Removes and returns every waiting item (closing down). */
  drain(): T[] {
    const all = [...this.waiting.values()].flat();
    this.waiting.clear();
    this.count = 0;
    return all;
  }
}
