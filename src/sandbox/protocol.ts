import { z } from 'zod';
import type { HostReply } from './host-calls.js';
import type { Limits } from './limits.js';
import { SANDBOX_ERROR_KINDS, type SandboxError } from './result.js';
import type { WasmModule } from './wasm.js';

/** Sent once to each worker thread when it starts. */
export interface WorkerInit {
  /** The QuickJS WebAssembly module, compiled once by the host and shared by every worker. */
  wasmModule: WasmModule;
  /** Int32Array[1]: the host writes a run id here to interrupt that run while it computes. */
  cancel: SharedArrayBuffer;
  /** Interpreters to keep instantiated ahead of time. */
  poolSize: number;
  /** Heap size of the pre-instantiated interpreters (runs with another size get a fresh one). */
  memoryMb: number;
}

/** Host → worker. */
export type ToWorker =
  | { type: 'run'; runId: number; code: string; limits: Limits; functions: string[]; secrets: string[] }
  | { type: 'hostresults'; runId: number; results: Array<{ callId: number; reply: HostReply }> }
  | { type: 'cancel'; runId: number };

/** What a worker reports for a finished run. `value` is the result as JSON text. */
export type WorkerOutcome =
  | { ok: true; value: string; logs: string[]; stats: WorkerStats }
  | { ok: false; error: SandboxError; logs: string[]; stats: WorkerStats };

export interface WorkerStats {
  durationMs: number;
  hostCalls: number;
  outputBytes: number;
  memoryBytes: number;
}

/** One host call as the worker forwards it; calls made in one slice of guest execution travel together. */
export interface HostCallRequest {
  callId: number;
  name: string;
  args: string;
}

/** Worker → host. `retire` asks the host to replace the worker (its thread lost CPU priority). */
export type FromWorker =
  | { type: 'ready' }
  | { type: 'hostcalls'; runId: number; calls: HostCallRequest[] }
  | { type: 'done'; runId: number; outcome: WorkerOutcome; retire: boolean };

const count = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
const statsSchema = z.object({
  durationMs: z.number().nonnegative().max(1e9),
  hostCalls: count,
  outputBytes: count,
  memoryBytes: count,
}).strict();
const logsSchema = z.array(z.string());

/**
 * The host validates every message from a worker: the worker runs guest code, so if the guest ever
 * broke out of the interpreter, these messages are the next thing it would forge.
 */
export const fromWorkerSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('ready') }).strict(),
  z.object({
    type: z.literal('hostcalls'),
    runId: count,
    calls: z.array(z.object({ callId: count, name: z.string().max(200), args: z.string() }).strict()).max(100_000),
  }).strict(),
  z.object({
    type: z.literal('done'),
    runId: count,
    outcome: z.discriminatedUnion('ok', [
      z.object({ ok: z.literal(true), value: z.string(), logs: logsSchema, stats: statsSchema }).strict(),
      z.object({
        ok: z.literal(false),
        error: z.object({ kind: z.enum(SANDBOX_ERROR_KINDS as [string, ...string[]]), message: z.string() }).strict(),
        logs: logsSchema,
        stats: statsSchema,
      }).strict(),
    ]),
    retire: z.boolean(),
  }).strict(),
]);
