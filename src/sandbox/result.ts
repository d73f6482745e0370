/** A JSON value: the only thing that crosses out of the sandbox as a result. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/**
 * Why a run ended without a value. One kind per limit, so callers (and the model) can react:
 * - `timeout`: the deadline passed (CPU spin, slow host call, or an interpreter that stopped answering)
 * - `memory`: the guest heap hit its cap
 * - `stack`: recursion too deep
 * - `output`: result plus console output over the cap, or a result that is too large
 * - `capability`: the guest tried something its grant does not allow (host, private address, tool)
 * - `host_calls`: too many host calls, or a host-call argument/response over the size cap
 * - `runtime`: the guest's own error (throw, syntax error, non-JSON result, promise that can never settle)
 * - `cancelled`: the caller aborted the run (its AbortSignal fired, or the sandbox closed)
 */
export type SandboxErrorKind =
  | 'timeout' | 'memory' | 'stack' | 'output' | 'capability' | 'host_calls' | 'runtime' | 'cancelled';

export const SANDBOX_ERROR_KINDS: readonly SandboxErrorKind[] = [
  'timeout', 'memory', 'stack', 'output', 'capability', 'host_calls', 'runtime', 'cancelled',
];

export interface SandboxError {
  kind: SandboxErrorKind;
  message: string;
}

/** What a run cost. */
export interface RunStats {
  /** Wall time inside the interpreter's worker, from start to the result. */
  durationMs: number;
  /** Host calls the guest made (console output excluded). */
  hostCalls: number;
  /** Bytes of result plus captured console lines. */
  outputBytes: number;
  /** Size of the guest's WebAssembly heap when the run ended (it only grows). */
  memoryBytes: number;
}

/** The outcome of one run. A guest failure is a result, never a thrown exception. */
export type RunResult =
  | { ok: true; value: JsonValue; logs: string[]; stats: RunStats }
  | { ok: false; error: SandboxError; logs: string[]; stats: RunStats };

export const EMPTY_STATS: Readonly<RunStats> = Object.freeze({ durationMs: 0, hostCalls: 0, outputBytes: 0, memoryBytes: 0 });

/** Builds a failed result; used where the host ends a run itself (worker died, queue closed, ...). */
export function failure(kind: SandboxErrorKind, message: string, logs: string[] = [], stats: RunStats = EMPTY_STATS): RunResult {
  return { ok: false, error: { kind, message }, logs, stats: { ...stats } };
}

/** Thrown by host-side code to end a run with a typed error (not catchable by the guest). */
export class SandboxBreach extends Error {
  constructor(readonly kind: SandboxErrorKind, message: string) {
    super(message);
    this.name = 'SandboxBreach';
  }
}
