import { z } from 'zod';

/**
 * Per-run resource limits. Every one is enforced; a breach ends the run with a typed error
 * (see `SandboxErrorKind`) and never affects the host or other runs.
 */
export interface Limits {
  /** Total guest memory (the interpreter's whole WebAssembly heap), in MiB. */
  memoryMb: number;
  /** Wall-clock deadline for the whole run, host calls included, in milliseconds. */
  timeoutMs: number;
  /** Interpreter stack size in KiB; bounds recursion depth. */
  stackKb: number;
  /** Bytes of output the run may produce: the JSON result plus captured console lines. */
  outputBytes: number;
  /** Number of host calls (e.g. `tools.http.fetch`) one run may make. */
  hostCalls: number;
  /** Maximum size of one host call's JSON arguments, and of its JSON response, in bytes. */
  hostCallBytes: number;
  /** Outbound HTTP requests in flight at once; more wait their turn. */
  concurrentRequests: number;
}

/** Safe defaults: small, short, no surprises. A manifest or caller may tighten or loosen them. */
export const DEFAULT_LIMITS: Readonly<Limits> = Object.freeze({
  memoryMb: 32,
  timeoutMs: 2000,
  stackKb: 256,
  outputBytes: 64 * 1024,
  hostCalls: 100,
  hostCallBytes: 256 * 1024,
  concurrentRequests: 4,
});

/**
 * The range each limit may take. The memory floor is the interpreter's own minimum heap; the
 * stack ceiling keeps guest recursion well inside the worker thread's native stack (measured:
 * the native stack needs ~3x the interpreter stack).
 */
export const LIMIT_BOUNDS: Readonly<Record<keyof Limits, readonly [number, number]>> = Object.freeze({
  memoryMb: [16, 1024],
  timeoutMs: [10, 600_000],
  stackKb: [32, 1024],
  outputBytes: [1024, 16 * 1024 * 1024],
  hostCalls: [0, 100_000],
  hostCallBytes: [1024, 16 * 1024 * 1024],
  concurrentRequests: [1, 64],
});

/** Largest program the sandbox accepts, in bytes of source. */
export const MAX_CODE_BYTES = 512 * 1024;

/** Worker threads get this much native stack, enough for the largest allowed `stackKb`. */
export const WORKER_STACK_MB = 8;

function bounded(key: keyof Limits) {
  const [min, max] = LIMIT_BOUNDS[key];
  return z.number().int().min(min).max(max);
}

/** zod schema for a partial set of limits, as a caller or manifest supplies them. */
export const limitsSchema = z.object({
  memoryMb: bounded('memoryMb'),
  timeoutMs: bounded('timeoutMs'),
  stackKb: bounded('stackKb'),
  outputBytes: bounded('outputBytes'),
  hostCalls: bounded('hostCalls'),
  hostCallBytes: bounded('hostCallBytes'),
  concurrentRequests: bounded('concurrentRequests'),
}).partial().strict();

/**
 * Fills in defaults (from `base`; unset or undefined keys keep it) and checks bounds. Throws a
 * `TypeError` naming the bad key, because a bad limit is a bug in the caller's configuration, not
 * something the guest did.
 */
export function resolveLimits(partial: Partial<Limits> | undefined, base: Readonly<Limits> = DEFAULT_LIMITS): Limits {
  const parsed = limitsSchema.safeParse(partial ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const key = issue?.path.join('.') ?? '?';
    const range = LIMIT_BOUNDS[key as keyof Limits];
    const hint = range ? ` (an integer from ${range[0]} to ${range[1]})` : '';
    throw new TypeError(`sandbox limit "${key}" is invalid${hint}: ${issue?.message ?? 'bad value'}`);
  }
  const out: Limits = { ...base };
  for (const [k, v] of Object.entries(parsed.data)) if (v !== undefined) out[k as keyof Limits] = v;
  return out;
}
