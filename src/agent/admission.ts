import { APICallError, wrapLanguageModel, type LanguageModel } from 'ai';
import type { LlmConfig } from '../config/schema.js';
import { FairQueue } from '../fair-queue.js';
import { CircuitBreaker, CircuitOpenError } from './breaker.js';

/**
 * A cap on LLM calls in flight in this process. Calls beyond it wait and are served round-robin
 * across conversations, so a conversation whose turn loops through many steps takes its turn
 * like everyone else instead of holding the line.
 */
export class LlmSlots {
  private inFlight = 0;
  private readonly waiting = new FairQueue<{ grant: (release: () => void) => void }>({ maxRunning: Number.POSITIVE_INFINITY, maxQueued: Number.POSITIVE_INFINITY });

  constructor(readonly limit: number) {}

  /** Resolves with a release function once the call may start; rejects if `signal` aborts first. */
  acquire(owner: string, signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      const waiter = {
        grant: (release: () => void) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(release);
        },
      };
      const onAbort = () => { if (this.waiting.remove(owner, waiter)) reject(signal!.reason); };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(owner, waiter);
      this.pump();
    });
  }

  private pump(): void {
    while (this.inFlight < this.limit) {
      const next = this.waiting.take();
      if (!next) return;
      this.inFlight++;
      let released = false;
      next.item.grant(() => {
        if (released) return;
        released = true;
        this.inFlight--;
        next.done();
        this.pump();
      });
    }
  }
}

/** What every model call of this process passes: the fair slots and the model's breaker. */
export interface LlmAdmission { slots: LlmSlots; breaker: CircuitBreaker }

export function createLlmAdmission(llm: Pick<LlmConfig, 'max_concurrent' | 'breaker_failures' | 'breaker_cooldown_ms'>): LlmAdmission {
  return {
    slots: new LlmSlots(llm.max_concurrent),
    breaker: new CircuitBreaker({ failures: llm.breaker_failures === 0 ? Number.POSITIVE_INFINITY : llm.breaker_failures, cooldownMs: llm.breaker_cooldown_ms }),
  };
}

type Outcome = 'ok' | 'failed' | 'inconclusive';

/** A refused request (400, 401, 404…) says the model is up; timeouts, 5xx, 429 and network errors say it is not. */
function outcomeOf(err: unknown, turn: AbortSignal): Outcome {
  if (turn.aborted || err instanceof CircuitOpenError) return 'inconclusive';
  if (APICallError.isInstance(err) && err.statusCode && err.statusCode >= 400 && err.statusCode < 500 && err.statusCode !== 408 && err.statusCode !== 429) return 'inconclusive';
  return 'failed';
}

/**
 * The model as one turn sees it: each call (every step, every retry) waits for a fair slot and
 * passes the breaker, which learns from how the call ends. A streamed call holds its slot until
 * the stream ends.
 */
export function admitted(model: LanguageModel, admission: LlmAdmission | undefined, owner: string, turn: AbortSignal): LanguageModel {
  if (!admission || typeof model === 'string' || model.specificationVersion !== 'v3') return model;
  const { slots, breaker } = admission;
  const record = (o: Outcome) => (o === 'ok' ? breaker.succeeded() : o === 'failed' ? breaker.failed() : breaker.inconclusive());
  const enter = async (signal: AbortSignal | undefined) => {
    // Fail fast while open, without waiting for a slot behind calls that hang.
    if (breaker.state === 'open') breaker.admit();
    const release = await slots.acquire(owner, signal);
    try { breaker.admit(); } catch (err) { release(); throw err; }
    return release;
  };
  return wrapLanguageModel({
    model,
    middleware: {
      specificationVersion: 'v3',
      wrapGenerate: async ({ doGenerate, params }) => {
        const release = await enter(params.abortSignal);
        try {
          const r = await doGenerate();
          record('ok');
          return r;
        } catch (err) {
          record(outcomeOf(err, turn));
          throw err;
        } finally {
          release();
        }
      },
      wrapStream: async ({ doStream, params }) => {
        const release = await enter(params.abortSignal);
        let r: Awaited<ReturnType<typeof doStream>>;
        try {
          r = await doStream();
        } catch (err) {
          record(outcomeOf(err, turn));
          release();
          throw err;
        }
        let settled = false;
        const settle = (o: Outcome) => { if (settled) return; settled = true; record(o); release(); };
        const reader = r.stream.getReader();
        const stream = new ReadableStream<(typeof r.stream) extends ReadableStream<infer P> ? P : never>({
          async pull(ctl) {
            try {
              const { value, done } = await reader.read();
              if (done) { settle('inconclusive'); ctl.close(); return; }
              if (value.type === 'error') settle(outcomeOf(value.error, turn));
              if (value.type === 'finish') settle('ok');
              ctl.enqueue(value);
            } catch (err) {
              settle(outcomeOf(err, turn));
              ctl.error(err);
            }
          },
          cancel(reason) {
            settle('inconclusive');
            return reader.cancel(reason);
          },
        });
        return { ...r, stream };
      },
    },
  });
}
