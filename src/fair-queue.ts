/**
 * Work waiting for a shared resource (LLM call slots, sandbox workers), kept per owner (a
 * conversation) and handed out round-robin: each owner's items in order, owners in turn, so one
 * owner with sixty items waiting cannot make another owner's single item wait behind them.
 * Each owner may have at most `maxRunning` items started and `maxQueued` waiting.
 *
 * Owners that used the resource least lately go first (the time their items held it, counted while
 * they run and halving every `halfLifeMs` after): a conversation that asks for one short run is
 * not placed behind every conversation that keeps the workers spinning, only behind those that
 * used less than it.
 */
export class FairQueue<T> {
  /** Owners with items waiting, in the order they are served (a served owner moves to the back). */
  private readonly waiting = new Map<string, T[]>();
  /** Start times of each owner's items that run. */
  private readonly running = new Map<string, number[]>();
  /** Faded worker time, when it was last updated, and how long the owner's last item ran. */
  private readonly usage = new Map<string, { value: number; at: number; last: number }>();
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
    return this.running.get(owner)?.length ?? 0;
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
   * (then the one with fewest waiting, then first in turn) gives its oldest item and goes to the back of the line. Call the
   * returned `done` when the item ends. With `accept`, only owners it accepts are considered.
   */
  take(accept?: (o: { usage: number; queued: number; running: number; lastMs: number }) => boolean): { owner: string; item: T; done: () => void } | undefined {
    const now = this.now();
    let best: string | undefined;
    let bestUsage = Number.POSITIVE_INFINITY;
    let bestQueued = Number.POSITIVE_INFINITY;
    for (const [owner, list] of this.waiting) {
      const running = this.runningFor(owner);
      if (running >= this.caps.maxRunning) continue;
      const u = this.usageOf(owner, now);
      if (accept && !accept({ usage: u, queued: list.length, running, lastMs: this.usage.get(owner)?.last ?? 0 })) continue;
      // Among equals, the owner asking for less goes first: one run is not queued behind floods.
      if (u < bestUsage || (u === bestUsage && list.length < bestQueued)) { best = owner; bestUsage = u; bestQueued = list.length; }
      if (u === 0 && list.length === 1) break;
    }
    if (best === undefined) return undefined;
    const owner = best;
    const list = this.waiting.get(owner)!;
    const item = list.shift()!;
    this.waiting.delete(owner);
    if (list.length > 0) this.waiting.set(owner, list);
    this.count--;
    const starts = this.running.get(owner) ?? [];
    starts.push(now);
    this.running.set(owner, starts);
    let finished = false;
    return { owner, item, done: () => { if (!finished) { finished = true; this.finish(owner, now); } } };
  }

  private finish(owner: string, startedAt: number): void {
    const starts = this.running.get(owner) ?? [];
    starts.splice(starts.indexOf(startedAt), 1);
    if (starts.length === 0) this.running.delete(owner);
    const now = this.now();
    const value = this.pastUsage(owner, now) + (now - startedAt);
    if (value >= 1) this.usage.set(owner, { value, at: now, last: now - startedAt });
    else this.usage.delete(owner);
    // Forget owners whose usage has faded, so the map does not grow with every conversation ever seen.
    if (this.usage.size > 1024) for (const [o] of this.usage) if (this.pastUsage(o, now) < 1) this.usage.delete(o);
  }

  /** Finished items' time, faded, plus the time so far of the items still running. */
  private usageOf(owner: string, now: number): number {
    let v = this.pastUsage(owner, now);
    for (const t of this.running.get(owner) ?? []) v += now - t;
    // Below one unit (a millisecond) owners count as equal and take plain turns.
    return v < 1 ? 0 : v;
  }

  private pastUsage(owner: string, now: number): number {
    const u = this.usage.get(owner);
    return u ? u.value * 2 ** (-(now - u.at) / this.halfLifeMs) : 0;
  }

  /** Removes and returns every waiting item (closing down). */
  drain(): T[] {
    const all = [...this.waiting.values()].flat();
    this.waiting.clear();
    this.count = 0;
    return all;
  }
}
