import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { FairQueue } from '../fair-queue.js';
import type { Logger } from '../logger.js';
import { failure } from './result.js';
import { SandboxWorker, type Job } from './sandbox-worker.js';
import { wasm, type WasmModule } from './wasm.js';

/** Compiles the QuickJS WebAssembly once per process; every worker instantiates from it. */
export async function compileQuickJS(): Promise<WasmModule> {
  // Resolve the variant through quickjs-emscripten, which is the package that depends on it.
  const fromPackage = createRequire(createRequire(import.meta.url).resolve('quickjs-emscripten'));
  const path = fromPackage.resolve('@jitl/quickjs-wasmfile-release-sync/wasm');
  return wasm.compile(await readFile(path));
}

export interface WorkerPoolOptions {
  /** Worker threads, i.e. runs that can compute at the same time. */
  workers: number;
  /** Interpreters each worker keeps instantiated ahead of time. */
  poolSize: number;
  /** Heap size of those pre-instantiated interpreters. */
  memoryMb: number;
  /** Runs allowed to wait for a free worker; more are refused at once. */
  maxQueue: number;
  /** Runs of one owner (conversation) computing at once; its others wait while other owners' runs go first. */
  runsPerOwner: number;
  /** Runs of one owner allowed to wait; more are refused at once. */
  queuedPerOwner: number;
  /**
   * Workers beyond `workers` that only take a light owner's run: one with nothing computing, a
   * single run waiting and little recent use. Runs are never interrupted, so without them a quiet
   * conversation's one short run waits for a spinning run to end when every worker spins.
   */
  spare?: number;
  logger?: Logger;
}

const MAX_STARTUP_FAILURES = 3;
/**
 * A light owner: nothing computing, one run waiting, little recent worker time, and a last run that
 * was short. The last condition keeps a spinning conversation off the spares even after its usage
 * faded while its runs waited (or at the first run of a new model step).
 */
const LIGHT_USAGE_MS = 1_000;
const LIGHT_LAST_RUN_MS = 250;
const isLight = (o: { usage: number; queued: number; running: number; lastMs: number }) => o.running === 0 && o.queued === 1 && o.usage < LIGHT_USAGE_MS && o.lastMs < LIGHT_LAST_RUN_MS;

/**
 * Schedules runs onto worker threads: one run per worker at a time, the worker idle longest goes
 * first (its interpreter pool has had the most time to refill), dead workers are replaced, and
 * workers whose thread lost CPU priority are replaced once their successors are ready. Waiting
 * runs are served round-robin across owners, each owner capped in runs computing and waiting, so
 * one conversation's sixty spinning runs cannot make another conversation's single run wait.
 */
export class WorkerPool {
  private readonly workers = new Set<SandboxWorker>();
  private idle: SandboxWorker[] = [];
  private readonly queue: FairQueue<Job>;
  private wasmModule: WasmModule | undefined;
  private compileError: Error | undefined;
  private readonly readyWaiters: Array<() => void> = [];
  private startupFailures = 0;
  private closed = false;
  /** Runs computing for owners that were not light when they started: at most `opts.workers`. */
  private heavy = 0;

  constructor(private readonly opts: WorkerPoolOptions) {
    this.queue = new FairQueue({ maxRunning: Math.max(1, opts.runsPerOwner), maxQueued: Math.max(0, opts.queuedPerOwner) });
    compileQuickJS().then((mod) => {
      this.wasmModule = mod;
      this.ensureCapacity();
    }, (err: Error) => {
      this.compileError = err;
      this.opts.logger?.error({ err }, 'could not compile QuickJS');
      this.failQueue(`the sandbox could not load QuickJS: ${err.message}`);
      for (const wake of this.readyWaiters.splice(0)) wake();
    });
  }

  /** Resolves once a worker is ready to take a run (or the sandbox cannot start at all). */
  whenReady(): Promise<void> {
    if (this.compileError || [...this.workers].some((w) => w.ready)) return Promise.resolve();
    return new Promise((resolve) => this.readyWaiters.push(resolve));
  }

  submit(job: Job): void {
    if (this.closed) return job.finish(failure('cancelled', 'the sandbox is closed'));
    if (this.compileError) return job.finish(failure('runtime', `the sandbox could not load QuickJS: ${this.compileError.message}`));
    if (this.queue.size >= this.opts.maxQueue) return job.finish(failure('runtime', `the sandbox is busy (${this.opts.maxQueue} runs waiting); try again later`));
    if (!this.queue.push(job.owner, job)) {
      return job.finish(failure('runtime', `too many code runs queued for this conversation (${this.queue.queuedFor(job.owner)} waiting, ${this.queue.runningFor(job.owner)} running); wait for their results, or do the work in fewer runs`));
    }
    this.ensureCapacity();
    this.dispatch();
  }

  /** Removes a job that has not started yet; returns false if it already runs (or ran). */
  withdraw(job: Job): boolean {
    return this.queue.remove(job.owner, job);
  }

  /** Interrupts a running job wherever it runs. */
  cancel(runId: number): void {
    for (const w of this.workers) w.cancel(runId);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.failQueue('the sandbox was closed', 'cancelled');
    await Promise.all([...this.workers].map((w) => w.terminate()));
  }

  private spawn(): void {
    if (this.closed || !this.wasmModule) return;
    const worker = new SandboxWorker({ wasmModule: this.wasmModule, poolSize: this.opts.poolSize, memoryMb: this.opts.memoryMb }, {
      onReady: (w) => {
        this.startupFailures = 0;
        for (const wake of this.readyWaiters.splice(0)) wake();
        this.becameIdle(w);
      },
      onIdle: (w) => this.becameIdle(w),
      onExit: (w) => this.exited(w),
    }, this.opts.logger);
    this.workers.add(worker);
  }

  /**
   * Keeps `opts.workers` full-priority workers alive or starting. Low-priority ones (their guest
   * spun) stay as a last resort until their replacements are ready, so capacity never dips.
   */
  private ensureCapacity(): void {
    let healthy = 0;
    for (const w of this.workers) if (!w.lowPriority) healthy++;
    const capacity = this.opts.workers + (this.opts.spare ?? 0);
    for (; healthy < capacity; healthy++) this.spawn();
    let readyHealthy = 0;
    for (const w of this.workers) if (w.ready && !w.lowPriority) readyHealthy++;
    if (readyHealthy < capacity) return;
    for (const w of [...this.idle]) {
      if (!w.lowPriority) continue;
      this.idle.splice(this.idle.indexOf(w), 1);
      w.dead = true;
      void w.terminate();
    }
  }

  private becameIdle(w: SandboxWorker): void {
    if (w.dead || this.idle.includes(w)) return;
    this.idle.push(w);
    if (this.wasmModule) this.ensureCapacity();
    this.dispatch();
  }

  private exited(w: SandboxWorker): void {
    this.workers.delete(w);
    const i = this.idle.indexOf(w);
    if (i >= 0) this.idle.splice(i, 1);
    if (this.closed) return;
    const startupError = w.startupError;
    if (startupError && ++this.startupFailures >= MAX_STARTUP_FAILURES) {
      this.failQueue(`sandbox workers fail to start: ${startupError.message}`);
      for (const wake of this.readyWaiters.splice(0)) wake();
      this.startupFailures = 0;
      return; // the next submit tries again
    }
    this.ensureCapacity();
  }

  /** Full-priority idle workers first, longest idle first; low-priority ones only if nothing else is free. */
  private dispatch(): void {
    while (this.queue.size > 0) {
      this.idle = this.idle.filter((w) => !w.dead && !w.busy);
      const i = this.idle.findIndex((w) => !w.lowPriority);
      if (this.idle.length === 0) return;
      // Past `opts.workers` heavy runs, the free workers are the spares: light owners only.
      const spareOnly = this.heavy >= this.opts.workers;
      const next = this.queue.take(spareOnly ? isLight : undefined);
      if (!next) return; // every waiting owner is at its cap (or none is light enough for a spare)
      // A run started on a spare stays off the heavy count; any other run takes a regular place.
      const light = spareOnly;
      if (!light) this.heavy++;
      const worker = this.idle.splice(i >= 0 ? i : 0, 1)[0]!;
      const job = next.item;
      // Finishing (however the run ends) frees the owner's place before the worker asks for more.
      worker.run({ ...job, finish: (result) => { if (!light) this.heavy--; next.done(); job.finish(result); } });
    }
  }

  private failQueue(message: string, kind: 'runtime' | 'cancelled' = 'runtime'): void {
    for (const job of this.queue.drain()) {
      job.session.close();
      job.finish(failure(kind, message));
    }
  }
}
