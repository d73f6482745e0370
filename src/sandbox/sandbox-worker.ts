import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Logger } from '../logger.js';
import type { HostCallSession, HostReply } from './host-calls.js';
import { WORKER_STACK_MB, type Limits } from './limits.js';
import { fromWorkerSchema, type FromWorker, type ToWorker, type WorkerInit, type WorkerOutcome } from './protocol.js';
import { failure, type JsonValue, type RunResult } from './result.js';

/** How long past its deadline a run may go quiet before its worker is terminated. */
export const WATCHDOG_GRACE_MS = 1000;

const RUNNING_AS_TS = import.meta.url.endsWith('.ts');
const WORKER_URL = new URL(RUNNING_AS_TS ? './worker.ts' : './worker.js', import.meta.url);

/**
 * Under tsx (tests, benchmarks) the worker is TypeScript. On Node 20 tsx does not register its
 * ESM hooks in worker threads, so the worker starts from a tiny CommonJS bootstrap that installs
 * tsx's require hook and loads worker.ts through it. The built (dist) worker is plain JS.
 */
function workerEntry(): { entry: URL | string; eval: boolean } {
  if (!RUNNING_AS_TS) return { entry: WORKER_URL, eval: false };
  const tsxCjs = createRequire(import.meta.url).resolve('tsx/cjs/api');
  const source = `require(${JSON.stringify(tsxCjs)}).register(); require(${JSON.stringify(fileURLToPath(WORKER_URL))});`;
  return { entry: source, eval: true };
}

/** One run as the host tracks it. */
export interface Job {
  runId: number;
  /** Whose run it is (a conversation): runs wait and are dispatched fairly per owner. */
  owner: string;
  code: string;
  limits: Limits;
  functions: string[];
  /** Names of the secret handles granted to the run; the guest sees them as `secrets.NAME`. */
  secrets: string[];
  session: HostCallSession;
  /** Called when a worker takes the job: its deadline starts now, not when it was queued. */
  started(): void;
  finish(result: RunResult): void;
}

/**
 * The host's handle on one worker thread. It runs one job at a time, answers its host calls,
 * validates everything the worker says, and kills the thread if it stops answering. A dead or
 * killed worker is never reused; the pool replaces it.
 */
export class SandboxWorker {
  private readonly worker: Worker;
  private readonly cancelFlag: Int32Array;
  private job: Job | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  private lastError: Error | undefined;
  private closing = false;
  private batch: { job: Job; results: Array<{ callId: number; reply: HostReply }> } | undefined;
  ready = false;
  dead = false;
  /** Its thread lost CPU priority (its guest spun); the pool replaces it as soon as it can. */
  lowPriority = false;

  constructor(
    init: Omit<WorkerInit, 'cancel'>,
    private readonly events: { onReady(w: SandboxWorker): void; onIdle(w: SandboxWorker): void; onExit(w: SandboxWorker): void },
    private readonly logger?: Logger,
  ) {
    const cancel = new SharedArrayBuffer(4);
    this.cancelFlag = new Int32Array(cancel);
    const { entry, eval: isEval } = workerEntry();
    this.worker = new Worker(entry, {
      eval: isEval,
      workerData: { ...init, cancel } satisfies WorkerInit,
      resourceLimits: { maxOldGenerationSizeMb: 128, maxYoungGenerationSizeMb: 16, stackSizeMb: WORKER_STACK_MB },
    });
    this.worker.on('message', (m: unknown) => this.onMessage(m));
    this.worker.on('error', (err) => { this.lastError = err; });
    this.worker.on('exit', (code) => this.onExit(code));
  }

  get busy(): boolean {
    return this.job !== undefined;
  }

  /** Starts a job; the caller guarantees the worker is ready and idle. */
  run(job: Job): void {
    this.job = job;
    job.started();
    this.worker.ref();
    this.watchdog = setTimeout(() => this.hung(job), job.limits.timeoutMs + WATCHDOG_GRACE_MS);
    this.post({ type: 'run', runId: job.runId, code: job.code, limits: job.limits, functions: job.functions, secrets: job.secrets });
  }

  /** Interrupts the job if it is still running: through the shared flag while it computes, by message while it waits. */
  cancel(runId: number): void {
    if (this.job?.runId !== runId) return;
    Atomics.store(this.cancelFlag, 0, runId);
    this.post({ type: 'cancel', runId });
  }

  /** Stops the thread; a run still in it ends as `cancelled`. */
  terminate(): Promise<number> {
    this.closing = true;
    // An idle worker is unref'd; held again until it has exited, so a caller awaiting close() is not
    // left with an event loop that empties first (Node then exits 13: unsettled top-level await).
    this.worker.ref();
    return this.worker.terminate();
  }

  private post(message: ToWorker): void {
    if (!this.dead) this.worker.postMessage(message);
  }

  private onMessage(raw: unknown): void {
    const parsed = fromWorkerSchema.safeParse(raw);
    if (!parsed.success) return this.kill(`sent a malformed message (${parsed.error.issues[0]?.message ?? '?'})`);
    const msg = parsed.data as FromWorker;
    if (msg.type === 'ready') {
      this.ready = true;
      this.worker.unref();
      return this.events.onReady(this);
    }
    const job = this.job;
    if (!job || msg.runId !== job.runId) return; // a late message about a run that already ended
    if (msg.type === 'hostcalls') {
      for (const call of msg.calls) {
        void job.session.handle(call.name, call.args).then((reply) => this.reply(job, call.callId, reply));
      }
      return;
    }
    this.complete(job, toRunResult(msg.outcome, job));
    if (msg.retire) this.lowPriority = true;
    this.worker.unref();
    this.events.onIdle(this);
  }

  /**
   * Queues a host-call answer; answers that complete together (in one microtask checkpoint) go
   * back in one message, so a guest firing many calls at once pays for few thread hops.
   */
  private reply(job: Job, callId: number, reply: HostReply): void {
    if (this.job !== job) return;
    if (this.batch?.job !== job) {
      const batch = { job, results: [] as Array<{ callId: number; reply: HostReply }> };
      this.batch = batch;
      queueMicrotask(() => {
        if (this.batch === batch) this.batch = undefined;
        if (this.job === job) this.post({ type: 'hostresults', runId: job.runId, results: batch.results });
      });
    }
    this.batch.results.push({ callId, reply });
  }

  private complete(job: Job, result: RunResult): void {
    if (this.job !== job) return;
    this.job = undefined;
    clearTimeout(this.watchdog);
    job.session.close();
    job.finish(result);
  }

  private hung(job: Job): void {
    if (this.job !== job) return;
    this.complete(job, failure('timeout', `the run exceeded its ${job.limits.timeoutMs} ms deadline and its interpreter stopped responding; it was terminated`));
    this.dead = true;
    void this.worker.terminate();
  }

  private kill(why: string): void {
    this.logger?.error({ why }, 'sandbox worker misbehaved; terminating it');
    if (this.job) this.complete(this.job, failure('runtime', `the sandbox worker ${why}; it was terminated`));
    this.dead = true;
    void this.worker.terminate();
  }

  private onExit(code: number): void {
    this.dead = true;
    clearTimeout(this.watchdog);
    if (this.job && this.closing) this.complete(this.job, failure('cancelled', 'the sandbox was closed while the run was in progress'));
    if (this.job) {
      const oom = (this.lastError as { code?: string } | undefined)?.code === 'ERR_WORKER_OUT_OF_MEMORY';
      this.complete(this.job, oom
        ? failure('memory', 'the sandbox worker ran out of memory; it was replaced')
        : failure('runtime', `the sandbox worker exited unexpectedly (code ${code}${this.lastError ? `: ${this.lastError.message}` : ''}); it was replaced`));
    }
    if (this.lastError) this.logger?.warn({ err: this.lastError }, 'sandbox worker exited');
    this.events.onExit(this);
  }

  /** Why a worker that never became ready died; used to stop respawning a broken setup. */
  get startupError(): Error | undefined {
    return this.ready ? undefined : this.lastError;
  }
}

/**
 * Turns a worker's report into the caller's result. The host re-checks what it can: the value
 * must parse as JSON and the output must fit, whatever the worker claims.
 */
function toRunResult(outcome: WorkerOutcome, job: Job): RunResult {
  const cap = job.limits.outputBytes;
  const stats = { ...outcome.stats, durationMs: Math.round(outcome.stats.durationMs * 1000) / 1000, hostCalls: job.session.callCount };
  let logBytes = 0;
  const logs: string[] = [];
  for (const line of outcome.logs) {
    logBytes += Buffer.byteLength(line) + 1;
    if (logBytes > cap) break;
    logs.push(line);
  }
  if (!outcome.ok) return { ok: false, error: outcome.error, logs, stats };
  if (logBytes + Buffer.byteLength(outcome.value) > cap) {
    return failure('output', `result plus console output exceed the ${cap}-byte output limit`, logs, stats);
  }
  try {
    return { ok: true, value: JSON.parse(outcome.value) as JsonValue, logs, stats };
  } catch {
    return failure('runtime', 'the sandbox returned a result that is not JSON', logs, stats);
  }
}
