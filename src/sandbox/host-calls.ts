import type { z } from 'zod';
import type { Logger } from '../logger.js';
import type { CapabilityGrant } from './grant.js';
import type { Limits } from './limits.js';
import { SandboxBreach, type JsonValue, type SandboxError } from './result.js';

/** What a host function knows about the run that called it. */
export interface HostCallContext {
  /** Aborted when the run ends for any reason; pass it to anything slow. */
  signal: AbortSignal;
  grant: CapabilityGrant;
  limits: Limits;
  /** Epoch ms at which the run's deadline passes. */
  deadline: number;
  /** Runs `fn` once one of the run's outbound-request slots is free (`limits.concurrentRequests`). */
  outbound<T>(fn: () => Promise<T>): Promise<T>;
}

/**
 * A function the host offers the guest as `tools.<name>(...args)`. This is the hook for later
 * capabilities (memory, approvals, ...): register it with the Sandbox, grant it per run.
 */
export interface HostFunction<A = unknown> {
  /** Dotted name under `tools`, e.g. `memory.search`. */
  name: string;
  /** Validates the guest's argument list, which arrives as a JSON array. */
  args: z.ZodType<A>;
  /** Whether a grant allows this function. Default: the grant's `tools` list names it. */
  granted?(grant: CapabilityGrant): boolean;
  call(args: A, ctx: HostCallContext): Promise<JsonValue>;
}

/** Thrown by a host function for an ordinary failure; the guest sees a catchable Error with this message. */
export class HostCallError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HostCallError';
  }
}

/** The host's answer to one host call: a JSON string, a catchable error, or the end of the run. */
export type HostReply =
  | { ok: true; value: string }
  | { ok: false; message: string }
  | { ok: false; fatal: SandboxError };

/** Names of the host functions `grant` allows, which are the only ones the guest will see. */
export function grantedFunctionNames(grant: CapabilityGrant, functions: ReadonlyMap<string, HostFunction<any>>): string[] {
  const names: string[] = [];
  for (const fn of functions.values()) if (fn.granted ? fn.granted(grant) : grant.tools.includes(fn.name)) names.push(fn.name);
  return names;
}

/**
 * The host side of one run's host calls. It treats every request as hostile, even though the
 * worker filtered it already: it counts calls, checks sizes, checks the grant, validates the
 * arguments, and bounds the reply, so a compromised interpreter gains nothing by skipping the
 * worker's checks.
 */
export class HostCallSession {
  private calls = 0;
  private active = 0;
  private readonly waiting: Array<() => void> = [];
  private readonly controller = new AbortController();
  private readonly allowed: Set<string>;
  private deadline = Number.POSITIVE_INFINITY;

  constructor(private readonly opts: {
    grant: CapabilityGrant;
    limits: Limits;
    functions: ReadonlyMap<string, HostFunction<any>>;
    logger?: Logger;
  }) {
    this.allowed = new Set(grantedFunctionNames(opts.grant, opts.functions));
  }

  /** Called when the run actually starts on a worker (queueing does not use up its time). */
  startClock(deadline: number): void {
    this.deadline = deadline;
  }

  get callCount(): number {
    return this.calls;
  }

  /** Handles one call; never throws. `args` is the guest's JSON-encoded argument array. */
  async handle(name: string, args: string): Promise<HostReply> {
    const { limits } = this.opts;
    if (this.controller.signal.aborted) return { ok: false, message: 'the run has ended' };
    if (++this.calls > limits.hostCalls) return fatal('host_calls', `more than ${limits.hostCalls} host calls in one run`);
    const size = Buffer.byteLength(args);
    if (size > limits.hostCallBytes) return fatal('host_calls', `arguments to tools.${name} are ${size} bytes; the limit is ${limits.hostCallBytes}`);
    const fn = this.opts.functions.get(name);
    if (!fn || !this.allowed.has(name)) return fatal('capability', `tools.${name} is not granted to this run`);
    let parsedArgs: unknown;
    try {
      parsedArgs = JSON.parse(args);
    } catch {
      return fatal('host_calls', `arguments to tools.${name} are not JSON`);
    }
    const checked = fn.args.safeParse(parsedArgs);
    if (!checked.success) {
      const issue = checked.error.issues[0];
      const where = issue?.path.length ? ` at ${issue.path.join('.')}` : '';
      return { ok: false, message: `tools.${name}: invalid arguments${where}: ${issue?.message ?? 'bad value'}` };
    }
    try {
      const value = await fn.call(checked.data, this.context());
      const json = JSON.stringify(value ?? null);
      const outSize = Buffer.byteLength(json);
      if (outSize > limits.hostCallBytes) return fatal('host_calls', `tools.${name} returned ${outSize} bytes; the limit is ${limits.hostCallBytes}`);
      return { ok: true, value: json };
    } catch (err) {
      if (err instanceof SandboxBreach) return fatal(err.kind, err.message);
      if (err instanceof HostCallError) return { ok: false, message: err.message.slice(0, 2000) };
      if (this.controller.signal.aborted) return { ok: false, message: 'the run has ended' };
      // Unknown errors may carry host internals (paths, addresses): log them, tell the guest little.
      this.opts.logger?.warn({ err, tool: name }, 'sandbox host function failed');
      return { ok: false, message: `tools.${name} failed (internal error)` };
    }
  }

  /** Ends the session: in-flight host work is aborted and later calls are refused. */
  close(): void {
    this.controller.abort(new Error('the run has ended'));
    for (const wake of this.waiting.splice(0)) wake();
  }

  private context(): HostCallContext {
    return {
      signal: this.controller.signal,
      grant: this.opts.grant,
      limits: this.opts.limits,
      deadline: this.deadline,
      outbound: (fn) => this.outbound(fn),
    };
  }

  private async outbound<T>(fn: () => Promise<T>): Promise<T> {
    while (this.active >= this.opts.limits.concurrentRequests) {
      await new Promise<void>((resolve) => this.waiting.push(resolve));
      if (this.controller.signal.aborted) throw new Error('the run has ended');
    }
    this.active++;
    try {
      return await fn();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}

function fatal(kind: SandboxError['kind'], message: string): HostReply {
  return { ok: false, fatal: { kind, message } };
}
