import type { Limits } from './limits.js';
import type { HostCallRequest } from './protocol.js';
import type { SandboxError } from './result.js';

/** What the worker knows when it checks a drained queue. */
export interface QueueCheck {
  limits: Limits;
  /** Names of the host functions this run was granted. */
  functions: ReadonlySet<string>;
  /** Ids of calls already forwarded and not yet answered. */
  pending: ReadonlySet<number>;
  /** Host calls forwarded so far in this run. */
  callsSoFar: number;
}

/**
 * Checks the host calls a guest queued (the prelude's `drain()` output: `{"0": [id, name, argsJson], ...}`).
 * The queue lives in guest memory, so anything may be in it: every entry is checked for shape,
 * for the call budget, for the grant and for size before it leaves the worker.
 */
export function checkQueuedCalls(text: string, check: QueueCheck): { calls: HostCallRequest[]; error?: SandboxError } {
  const { limits } = check;
  const corrupted = { calls: [], error: { kind: 'runtime' as const, message: 'the guest corrupted its host-call queue' } };
  let queued: unknown;
  try {
    queued = JSON.parse(text);
  } catch {
    return corrupted;
  }
  if (typeof queued !== 'object' || queued === null) return corrupted;
  const calls: HostCallRequest[] = [];
  const seen = new Set<number>();
  let count = check.callsSoFar;
  for (const entry of Object.values(queued)) {
    const [id, name, args] = Array.isArray(entry) ? (entry as unknown[]) : [];
    if (typeof id !== 'number' || typeof name !== 'string' || typeof args !== 'string') return corrupted;
    if (!Number.isSafeInteger(id) || check.pending.has(id) || seen.has(id)) return corrupted;
    if (++count > limits.hostCalls) return { calls, error: { kind: 'host_calls', message: `more than ${limits.hostCalls} host calls in one run` } };
    if (!check.functions.has(name)) return { calls, error: { kind: 'capability', message: `tools.${name.slice(0, 100)} is not granted to this run` } };
    if (Buffer.byteLength(args) > limits.hostCallBytes) {
      return { calls, error: { kind: 'host_calls', message: `arguments to tools.${name} exceed ${limits.hostCallBytes} bytes` } };
    }
    seen.add(id);
    calls.push({ callId: id, name, args });
  }
  return { calls };
}
