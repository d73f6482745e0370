import type { QuickJSHandle } from 'quickjs-emscripten';
import type { GuestHooks, Interpreter } from './interpreter.js';
import type { HostReply } from './host-calls.js';
import type { FromWorker, HostCallRequest, ToWorker, WorkerOutcome } from './protocol.js';
import { classifyFailure, classifyHostException, timeoutMessage } from './guest-errors.js';
import { guestErrorText, readGuestString } from './guest-values.js';
import { checkQueuedCalls } from './host-call-queue.js';
import type { SandboxError } from './result.js';
import { LOWER_PRIORITY_AFTER_MS, lowerThreadPriority, restoreThreadPriority } from './thread-priority.js';

type RunMessage = Extract<ToWorker, { type: 'run' }>;

/**
 * One run inside a worker thread: starts the guest, pumps its promise jobs, bridges host calls to
 * the host thread, and ends with exactly one `done` message. Every limit that can be checked here
 * is checked here (the host checks the host-call ones again). Any exception out of the
 * interpreter ends the run; the interpreter is never reused either way.
 */
export class GuestRun implements GuestHooks {
  private reason: SandboxError | undefined;
  private settled: { ok: boolean; text: string | null } | undefined;
  private readonly pending = new Set<number>();
  /** Host calls made during the current slice of guest execution, sent together when it ends. */
  private outbox: HostCallRequest[] = [];
  private readonly logs: string[] = [];
  private readonly functions: Set<string>;
  private readonly deadline: number;
  private readonly startedAt = performance.now();
  private hostCalls = 0;
  private logBytes = 0;
  private finished = false;
  /** Set once this thread was moved to low CPU priority; the host then retires the worker. */
  lowPriority = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly interp: Interpreter,
    private readonly msg: RunMessage,
    private readonly cancel: Int32Array,
    private readonly send: (m: FromWorker) => void,
    private readonly onFinish: () => void,
  ) {
    this.functions = new Set(msg.functions);
    this.deadline = Date.now() + msg.limits.timeoutMs;
  }

  get runId(): number {
    return this.msg.runId;
  }

  start(): void {
    const { runtime, context } = this.interp;
    const { limits } = this.msg;
    runtime.setMaxStackSize(limits.stackKb * 1024);
    runtime.setMemoryLimit(limits.memoryMb * 1024 * 1024);
    runtime.setInterruptHandler(() => this.shouldInterrupt());
    this.interp.hooks = this;
    // Fires only while the guest waits on host calls; a computing guest is stopped by the interrupt handler.
    this.timer = setTimeout(() => this.stop({ kind: 'timeout', message: timeoutMessage(limits.timeoutMs) }), limits.timeoutMs + 1);
    this.guard(() => {
      const code = context.newString(this.msg.code);
      const names = context.newString(JSON.stringify(this.msg.functions));
      const maxCalls = context.newNumber(limits.hostCalls);
      const maxArgChars = context.newNumber(limits.hostCallBytes);
      const secrets = context.newString(JSON.stringify(this.msg.secrets ?? []));
      const r = context.callFunction(this.interp.start, context.undefined, code, names, maxCalls, maxArgChars, secrets);
      for (const h of [code, names, maxCalls, maxArgChars, secrets]) h.dispose();
      if (r.error) this.stopWith(guestErrorText(this.interp, r.error));
      r.dispose();
    });
    this.pump();
  }

  /**
   * Answers to host calls arrived from the host thread: hand them to the guest in one batch, then
   * run it on. A reply's value is JSON text the host produced, so it is spliced in unparsed.
   */
  onHostResults(results: Array<{ callId: number; reply: HostReply }>): void {
    if (this.finished) return;
    const entries: string[] = [];
    for (const { callId, reply } of results) {
      if (!this.pending.delete(callId)) continue;
      if (!reply.ok && 'fatal' in reply) return this.stop(reply.fatal);
      entries.push(reply.ok ? `[${callId},1,${reply.value}]` : `[${callId},0,${JSON.stringify(reply.message)}]`);
    }
    const { context } = this.interp;
    this.guard(() => {
      const batch = context.newString(`[${entries.join(',')}]`);
      const r = context.callFunction(this.interp.deliver, context.undefined, batch);
      batch.dispose();
      if (r.error) this.stopWith(guestErrorText(this.interp, r.error));
      r.dispose();
    });
    this.pump();
  }

  /** Ends the run with a `runtime` error from outside the guest (a bug in the worker itself). */
  fail(message: string): void {
    this.stop({ kind: 'runtime', message });
  }

  /** The caller cancelled; effective at once if the guest is waiting, else at the next interrupt check. */
  onCancel(): void {
    this.stop({ kind: 'cancelled', message: 'the run was cancelled by its caller' });
  }

  log(text: QuickJSHandle): void {
    if (this.reason) throw new Error('the run is ending');
    if (this.interp.context.typeof(text) !== 'string') return;
    const cap = this.msg.limits.outputBytes;
    const remaining = cap - this.logBytes;
    const str = readGuestString(this.interp, text, remaining);
    // One byte per line for the separator, so a flood of empty lines still counts.
    if (str === undefined || Buffer.byteLength(str) + 1 > remaining) {
      if (str !== undefined && remaining > 1) this.logs.push(Buffer.from(str).subarray(0, remaining - 1).toString());
      this.logBytes = cap;
      this.reason = { kind: 'output', message: `console output exceeded the ${cap}-byte output limit` };
      throw new Error('output limit reached');
    }
    this.logs.push(str);
    this.logBytes += Buffer.byteLength(str) + 1;
  }

  breach(whatH: QuickJSHandle): void {
    const { limits } = this.msg;
    const what = readGuestString(this.interp, whatH, 10);
    this.reason ??= what === 'bytes'
      ? { kind: 'host_calls', message: `host-call arguments exceed ${limits.hostCallBytes} bytes` }
      : { kind: 'host_calls', message: `more than ${limits.hostCalls} host calls in one run` };
  }

  settle(okH: QuickJSHandle, textH: QuickJSHandle): void {
    if (this.settled) return;
    const { context } = this.interp;
    const ok = context.typeof(okH) === 'boolean' && context.dump(okH) === true;
    const cap = this.msg.limits.outputBytes;
    const text = context.typeof(textH) === 'string' ? readGuestString(this.interp, textH, ok ? cap : 64 * 1024) : undefined;
    if (ok && text === undefined) {
      this.reason ??= { kind: 'output', message: `the result exceeds the ${cap}-byte output limit` };
      return;
    }
    this.settled = { ok, text: text ?? null };
  }

  private shouldInterrupt(): boolean {
    if (this.reason) return true;
    if (!this.lowPriority && performance.now() - this.startedAt > LOWER_PRIORITY_AFTER_MS) {
      this.lowPriority = lowerThreadPriority();
    }
    if (Atomics.load(this.cancel, 0) === this.msg.runId) {
      this.reason = { kind: 'cancelled', message: 'the run was cancelled by its caller' };
    } else if (Date.now() > this.deadline) {
      this.reason = { kind: 'timeout', message: timeoutMessage(this.msg.limits.timeoutMs) };
    }
    return this.reason !== undefined;
  }

  /** Runs promise jobs until the guest settles, must wait for the host, or can make no progress. */
  private pump(): void {
    if (this.finished) return;
    const { runtime } = this.interp;
    // Runs every job, including ones queued meanwhile, until the queue is empty or one fails.
    if (!this.reason && !this.settled) {
      this.guard(() => {
        const r = runtime.executePendingJobs();
        if (r.error) this.stopWith(guestErrorText(this.interp, r.error));
        r.dispose();
      });
    }
    if (!this.reason && !this.settled) this.guard(() => this.collectHostCalls());
    if (this.outbox.length > 0 && !this.reason && !this.settled) {
      this.send({ type: 'hostcalls', runId: this.msg.runId, calls: this.outbox });
      this.outbox = [];
    }
    if (this.reason) return this.finish({ ok: false, error: this.reason });
    if (this.settled) return this.finishSettled(this.settled);
    if (this.pending.size === 0) {
      this.finish({ ok: false, error: this.classify(null, 'the code\'s promise can never settle: it awaits something that nothing will resolve') });
    }
  }

  /** Takes the host calls the guest queued during the last slice; they leave only after being checked. */
  private collectHostCalls(): void {
    const { context, drain } = this.interp;
    const r = context.callFunction(drain, context.undefined);
    if (r.error) return this.stopWith(guestErrorText(this.interp, r.error));
    const text = readGuestString(this.interp, r.value, this.msg.limits.memoryMb * 1024 * 1024);
    r.dispose();
    if (!text) return;
    const { calls, error } = checkQueuedCalls(text, {
      limits: this.msg.limits, functions: this.functions, pending: this.pending, callsSoFar: this.hostCalls,
    });
    if (error) this.reason ??= error;
    for (const call of calls) {
      this.hostCalls++;
      this.pending.add(call.callId);
      this.outbox.push(call);
    }
  }

  private finishSettled({ ok, text }: { ok: boolean; text: string | null }): void {
    // A native operation that never polls the interrupt handler can overrun the deadline and still finish.
    if (Date.now() > this.deadline) return this.finish({ ok: false, error: { kind: 'timeout', message: timeoutMessage(this.msg.limits.timeoutMs) } });
    if (!ok) return this.finish({ ok: false, error: this.classify(text, 'the code failed with an error that is unprintable or too large to report') });
    const value = text ?? 'null';
    const cap = this.msg.limits.outputBytes;
    if (this.logBytes + Buffer.byteLength(value) > cap) {
      return this.finish({ ok: false, error: { kind: 'output', message: `result plus console output exceed the ${cap}-byte output limit` } });
    }
    this.finish({ ok: true, value });
  }

  private stop(error: SandboxError): void {
    if (this.finished) return;
    this.reason ??= error;
    this.finish({ ok: false, error: this.reason });
  }

  private stopWith(text: string | null): void {
    this.reason ??= this.classify(text, 'the interpreter failed');
  }

  private finish(end: { ok: true; value: string } | { ok: false; error: SandboxError }): void {
    if (this.finished) return;
    this.finished = true;
    clearTimeout(this.timer);
    this.interp.hooks = undefined;
    const stats = {
      durationMs: performance.now() - this.startedAt,
      hostCalls: this.hostCalls,
      outputBytes: this.logBytes + (end.ok ? Buffer.byteLength(end.value) : 0),
      memoryBytes: this.interp.memory.buffer.byteLength,
    };
    const outcome: WorkerOutcome = end.ok
      ? { ok: true, value: end.value, logs: this.logs, stats }
      : { ok: false, error: { kind: end.error.kind, message: end.error.message.slice(0, 4000) }, logs: this.logs, stats };
    const retire = this.lowPriority && !restoreThreadPriority();
    this.send({ type: 'done', runId: this.msg.runId, outcome, retire });
    this.onFinish();
  }

  /** Calls into the interpreter; a host-side exception (native stack overflow, wasm trap) ends the run. */
  private guard(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.reason ??= classifyHostException(err, this.memoryFull(), this.msg.limits);
    }
  }

  private classify(text: string | null, fallback: string): SandboxError {
    return this.reason ?? classifyFailure(text, this.memoryFull(), this.msg.limits, fallback);
  }

  /** The heap grows in steps, so "full" means within the last quarter of the cap. */
  private memoryFull(): boolean {
    return this.interp.memory.buffer.byteLength >= this.msg.limits.memoryMb * 1024 * 1024 * 0.75;
  }
}
