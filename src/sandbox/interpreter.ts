import {
  newQuickJSWASMModule, newVariant, RELEASE_SYNC,
  type QuickJSContext, type QuickJSHandle, type QuickJSRuntime,
} from 'quickjs-emscripten';
import { PRELUDE_SOURCE } from './prelude.js';
import { wasm, type WasmMemory, type WasmModule } from './wasm.js';

const PAGE = 64 * 1024;

/** What a run plugs into an interpreter's three raw host functions (see prelude.ts). */
export interface GuestHooks {
  log(text: QuickJSHandle): void;
  /** The prelude saw the guest exceed its host-call budget (`what` is "calls" or "bytes"). */
  breach(what: QuickJSHandle): void;
  settle(ok: QuickJSHandle, text: QuickJSHandle): void;
}

/**
 * One QuickJS interpreter in its own WebAssembly instance with a fixed-maximum memory, so the cap
 * on guest memory is real: the heap cannot grow past `memoryMb`, and nothing is shared with any
 * other run. Used for exactly one run; afterwards only its heap may live on, zeroed, under a new
 * instance.
 */
export interface Interpreter {
  memoryMb: number;
  memory: WasmMemory;
  runtime: QuickJSRuntime;
  context: QuickJSContext;
  /** The prelude's `start(code, toolNamesJson, maxCalls, maxArgChars)`. */
  start: QuickJSHandle;
  /** The prelude's `deliver(batchJson)`, which settles host-call promises. */
  deliver: QuickJSHandle;
  /** The prelude's `drain()`, which hands over the host calls queued since the last drain. */
  drain: QuickJSHandle;
  /** The property key "length", kept to read string lengths without allocating a key each time. */
  lengthKey: QuickJSHandle;
  /** Set by the run that owns this interpreter; unset hooks make the host functions inert. */
  hooks: GuestHooks | undefined;
}

/** The module's minimum heap, which is also the size of a heap that never grew. */
const INITIAL_PAGES = 256;
const CHUNK = 64 * 1024;
const ZERO_CHUNK = Buffer.alloc(CHUNK);
/** A used heap is recycled only if its last run dirtied at most this much; scrubbed pages stay resident. */
const MAX_RECYCLED_DIRTY_BYTES = 4 * 1024 * 1024;

/** A new, empty, fixed-maximum WebAssembly heap for an interpreter with `memoryMb` of memory. */
export function newHeap(memoryMb: number): WasmMemory {
  const pages = Math.floor((memoryMb * 1024 * 1024) / PAGE);
  return new wasm.Memory({ initial: Math.min(pages, INITIAL_PAGES), maximum: pages });
}

/**
 * Zeroes every 64 KiB chunk of a used heap that is not all zeros, so nothing of the previous run
 * survives into the next. Every chunk is checked (nothing the guest could have written decides
 * what gets cleared). Returns false, and the heap must be dropped, if too much was dirty.
 */
export function scrubHeap(memory: WasmMemory, maxDirtyBytes = MAX_RECYCLED_DIRTY_BYTES): boolean {
  const bytes = Buffer.from(memory.buffer);
  let dirty = 0;
  for (let offset = 0; offset < bytes.length; offset += CHUNK) {
    if (bytes.compare(ZERO_CHUNK, 0, CHUNK, offset, offset + CHUNK) === 0) continue;
    if ((dirty += CHUNK) > maxDirtyBytes) return false;
    bytes.fill(0, offset, offset + CHUNK);
  }
  return true;
}

/**
 * Instantiates a fresh interpreter, on a new heap or on a scrubbed one from a finished run, and
 * evaluates the prelude in it.
 */
export async function createInterpreter(wasmModule: WasmModule, memoryMb: number, memory = newHeap(memoryMb)): Promise<Interpreter> {
  const qjs = await newQuickJSWASMModule(newVariant(RELEASE_SYNC, { wasmModule, wasmMemory: memory }));
  const runtime = qjs.newRuntime();
  const context = runtime.newContext();
  const interp: Interpreter = {
    memoryMb, memory, runtime, context, start: context.undefined, deliver: context.undefined, drain: context.undefined, lengthKey: context.newString('length'), hooks: undefined,
  };
  const log = context.newFunction('hostLog', (text) => { interp.hooks?.log(text); });
  const breach = context.newFunction('hostBreach', (what) => { interp.hooks?.breach(what); });
  const settle = context.newFunction('settle', (ok, text) => { interp.hooks?.settle(ok, text); });
  const factory = context.unwrapResult(context.evalCode(PRELUDE_SOURCE, 'prelude.js', { type: 'global', strict: true }));
  const fns = context.unwrapResult(context.callFunction(factory, context.undefined, log, breach, settle));
  interp.start = context.getProp(fns, 0);
  interp.deliver = context.getProp(fns, 1);
  interp.drain = context.getProp(fns, 2);
  for (const h of [fns, factory, log, breach, settle]) h.dispose();
  return interp;
}

/**
 * Interpreters instantiated ahead of time, each handed out once. Instantiating takes ~1 ms; the
 * pool moves that cost out of the run's latency into the worker's idle time.
 */
export class InterpreterPool {
  private readonly ready: Interpreter[] = [];
  /** Heaps of finished runs, waiting to be scrubbed and reused. */
  private readonly spare: WasmMemory[] = [];
  private refilling = false;

  constructor(
    private readonly wasmModule: WasmModule,
    private readonly size: number,
    private readonly memoryMb: number,
  ) {}

  /** An unused interpreter with the given heap size: from the pool if one fits, else a new one. */
  async take(memoryMb: number): Promise<Interpreter> {
    if (memoryMb === this.memoryMb) {
      const interp = this.ready.shift();
      if (interp) return interp;
    }
    return createInterpreter(this.wasmModule, memoryMb);
  }

  /**
   * Takes back the heap of a finished run (its interpreter is never used again). Reusing heaps
   * instead of dropping them spares the worker a full garbage collection every few runs, which
   * V8 forces when large WebAssembly memories come and go. Grown heaps are not kept.
   */
  recycle(interp: Interpreter): void {
    if (interp.memoryMb !== this.memoryMb || this.spare.length > this.size) return;
    if (interp.memory.buffer.byteLength !== Math.min(INITIAL_PAGES * PAGE, this.memoryMb * 1024 * 1024)) return;
    this.spare.push(interp.memory);
  }

  /** Tops the pool up in the background; each step yields, so arriving runs are not held up. */
  refill(): Promise<void> {
    if (this.refilling) return Promise.resolve();
    this.refilling = true;
    const step = async (): Promise<void> => {
      while (this.ready.length < this.size) {
        await new Promise((resolve) => setImmediate(resolve));
        let heap = this.spare.pop();
        if (heap && !scrubHeap(heap)) heap = undefined;
        this.ready.push(await createInterpreter(this.wasmModule, this.memoryMb, heap));
      }
    };
    return step().finally(() => { this.refilling = false; });
  }
}
