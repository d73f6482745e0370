/**
 * Work waiting for a shared resource (LLM call slots, sandbox workers), kept per owner (a
 * conversation) and handed out round-robin: each owner's items in order, owners in turn, so one
 * owner with sixty items waiting cannot make another owner's single item wait behind them.
 * Each owner may have at most `maxRunning` items started and `maxQueued` waiting.
 */
export class FairQueue<T> {
  /** Owners with items waiting, in the order they are served (a served owner moves to the back). */
  private readonly waiting = new Map<string, T[]>();
  private readonly running = new Map<string, number>();
  private count = 0;

  constructor(readonly caps: { maxRunning: number; maxQueued: number }) {}

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
   * The next item to start: the first owner in turn that is below its running cap gives its
   * oldest item and goes to the back of the line. The caller calls `done(owner)` when it ends.
   */
  take(): { owner: string; item: T } | undefined {
    for (const [owner, list] of this.waiting) {
      if (this.runningFor(owner) >= this.caps.maxRunning) continue;
      const item = list.shift()!;
      this.waiting.delete(owner);
      if (list.length > 0) this.waiting.set(owner, list);
      this.count--;
      this.running.set(owner, this.runningFor(owner) + 1);
      return { owner, item };
    }
    return undefined;
  }

  /** An item handed out by `take` has finished. */
  done(owner: string): void {
    const n = this.runningFor(owner) - 1;
    if (n > 0) this.running.set(owner, n);
    else this.running.delete(owner);
  }

  /** Removes and returns every waiting item (closing down). */
  drain(): T[] {
    const all = [...this.waiting.values()].flat();
    this.waiting.clear();
    this.count = 0;
    return all;
  }
}
