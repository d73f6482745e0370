import { availableParallelism } from 'node:os';
import type { Logger } from '../logger.js';
import { createPolicyEgress, type Egress } from './egress.js';
import { normalizeGrant, TOOL_NAME, type CapabilityGrant } from './grant.js';
import { grantedFunctionNames, HostCallSession, type HostFunction } from './host-calls.js';
import { createHttpFetchFunction } from './http-tool.js';
import { MAX_CODE_BYTES, resolveLimits, type Limits } from './limits.js';
import { failure, type RunResult } from './result.js';
import type { Job } from './sandbox-worker.js';
import { WorkerPool } from './worker-pool.js';

export { DEFAULT_LIMITS, LIMIT_BOUNDS, MAX_CODE_BYTES, type Limits } from './limits.js';
export { createRunCodeTool, SANDBOX_SYSTEM_PROMPT } from './run-code-tool.js';
export { DEFAULT_MANIFEST, grantFromManifest, loadAgentManifest, ManifestError, type AgentManifest } from './manifest.js';
export { NO_CAPABILITIES, type CapabilityGrant } from './grant.js';
export { SandboxBreach, type JsonValue, type RunResult, type RunStats, type SandboxError, type SandboxErrorKind } from './result.js';
export { HostCallError, type HostCallContext, type HostFunction } from './host-calls.js';
export { createPolicyEgress, EgressDeniedError, type Egress, type EgressRequest, type EgressResponse } from './egress.js';

export interface SandboxOptions {
  /** Worker threads, i.e. guests that can compute at once. Default: twice the CPU count, from 2 to 4. */
  workers?: number;
  /** Interpreters each worker instantiates ahead of time (each is used once). Default: 2. */
  poolSize?: number;
  /** Where `tools.http.fetch` goes. Default: the policy egress; the vault wraps it. */
  egress?: Egress;
  /** Extra host functions the guest may be granted (e.g. `memory.search`). */
  hostFunctions?: HostFunction<any>[];
  /** Limits for runs that do not set their own. Default: `DEFAULT_LIMITS`. */
  defaults?: Partial<Limits>;
  /** Runs allowed to wait for a free worker, over all owners. Default: 256. */
  maxQueue?: number;
  /**
   * Extra workers that take only a light conversation's run (nothing computing, one run waiting,
   * little recent use), so a quiet conversation is not queued behind spinning ones. Default 1.
   */
  spareWorkers?: number;
  /** Runs of one owner computing at once. Default: half the workers (at least 1). */
  runsPerOwner?: number;
  /** Runs of one owner allowed to wait. Default: 16. */
  queuedPerOwner?: number;
  logger?: Logger;
}

export interface RunOptions {
  /** What the guest may do. Default: nothing beyond computation. */
  grant?: CapabilityGrant;
  limits?: Partial<Limits>;
  /** Aborting it ends the run with a `cancelled` error. */
  signal?: AbortSignal;
  /** Whose run it is (a conversation id): runs are queued per owner and dispatched round-robin. Default: a run of its own. */
  owner?: string;
}

let nextRunId = 1;

/**
 * Runs untrusted JavaScript in fresh QuickJS interpreters (WebAssembly), one per run, on worker
 * threads. The code is the body of an async function: `return` gives the result (a JSON value),
 * `await` works at the top level, console output is captured. The guest can do exactly what its
 * grant allows, through host functions that check the grant on every call.
 */
export class Sandbox {
  private readonly pool: WorkerPool;
  private readonly functions = new Map<string, HostFunction<any>>();
  private readonly defaults: Limits;
  private readonly logger: Logger | undefined;
  private closed = false;

  constructor(opts: SandboxOptions = {}) {
    this.logger = opts.logger;
    this.defaults = resolveLimits(opts.defaults);
    this.register(createHttpFetchFunction(opts.egress ?? createPolicyEgress()));
    for (const fn of opts.hostFunctions ?? []) this.register(fn);
    const workers = opts.workers ?? Math.max(2, Math.min(4, availableParallelism() * 2));
    this.pool = new WorkerPool({
      workers: Math.max(1, Math.floor(workers)),
      poolSize: Math.max(0, Math.floor(opts.poolSize ?? 2)),
      memoryMb: this.defaults.memoryMb,
      maxQueue: opts.maxQueue ?? 256,
      runsPerOwner: opts.runsPerOwner ?? Math.max(1, Math.floor(workers / 2)),
      queuedPerOwner: opts.queuedPerOwner ?? 16,
      spare: Math.max(0, Math.floor(opts.spareWorkers ?? 1)),
      logger: opts.logger,
    });
  }

  /** Adds a host function the guest can be granted. Names are unique; `http.fetch` is built in. */
  register(fn: HostFunction<any>): this {
    if (!TOOL_NAME.test(fn.name)) throw new TypeError(`host function name "${fn.name}" must be dotted, e.g. "memory.search"`);
    if (this.functions.has(fn.name)) throw new TypeError(`host function "${fn.name}" is already registered`);
    this.functions.set(fn.name, fn);
    return this;
  }

  /** Resolves once a worker is ready, so the first run does not pay for startup (optional; `run` waits anyway). */
  warmup(): Promise<void> {
    return this.pool.whenReady();
  }

  /**
   * Runs `code` once in a fresh interpreter. Resolves with the value or a typed error; rejects
   * only for caller mistakes (invalid grant or limits, sandbox closed).
   */
  async run(code: string, opts: RunOptions = {}): Promise<RunResult> {
    if (this.closed) throw new Error('this Sandbox is closed');
    if (typeof code !== 'string') throw new TypeError('code must be a string');
    const limits = resolveLimits(opts.limits, this.defaults);
    const grant = normalizeGrant(opts.grant);
    for (const name of grant.tools) {
      if (!this.functions.has(name)) throw new TypeError(`the grant names tool "${name}", which is not registered with this Sandbox`);
    }
    const size = Buffer.byteLength(code);
    if (size > MAX_CODE_BYTES) return failure('runtime', `the code is ${size} bytes; the limit is ${MAX_CODE_BYTES}`);
    if (opts.signal?.aborted) return failure('cancelled', 'the run was cancelled before it started');

    const runId = nextRunId++;
    const session = new HostCallSession({ grant, limits, functions: this.functions, logger: this.logger });
    return new Promise<RunResult>((resolve) => {
      const onAbort = (): void => {
        if (this.pool.withdraw(job)) {
          session.close();
          job.finish(failure('cancelled', 'the run was cancelled before it started'));
        } else {
          this.pool.cancel(runId);
        }
      };
      const job: Job = {
        runId, code, limits, owner: opts.owner ?? `run:${runId}`,
        functions: grantedFunctionNames(grant, this.functions),
        secrets: [...(grant.secrets ?? [])],
        session,
        finish: (result) => {
          opts.signal?.removeEventListener('abort', onAbort);
          resolve(result);
        },
        started: () => session.startClock(Date.now() + limits.timeoutMs),
      };
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      this.pool.submit(job);
    });
  }

  /** Stops every worker. Runs in progress end with `cancelled`; later `run` calls reject. */
  async close(): Promise<void> {
    this.closed = true;
    await this.pool.close();
  }
}
