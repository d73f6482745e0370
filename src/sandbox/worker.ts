/**
 * Worker-thread entry: runs guests one at a time, off the host's event loop, so a guest spinning
 * at its CPU limit delays nobody else. The host talks to it only through messages (protocol.ts)
 * and one shared Int32 used to interrupt a computing guest.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { GuestRun } from './guest-run.js';
import { InterpreterPool } from './interpreter.js';
import type { FromWorker, ToWorker, WorkerInit } from './protocol.js';

const init = workerData as WorkerInit;
const port = parentPort;
if (!port) throw new Error('sandbox worker must run in a worker thread');

const cancel = new Int32Array(init.cancel);
const pool = new InterpreterPool(init.wasmModule, init.poolSize, init.memoryMb);
let current: GuestRun | undefined;
let queue: Promise<void> = Promise.resolve();

function send(message: FromWorker): void {
  port!.postMessage(message);
}

async function startRun(msg: Extract<ToWorker, { type: 'run' }>): Promise<void> {
  let interp;
  try {
    interp = await pool.take(msg.limits.memoryMb);
  } catch (err) {
    const error = { kind: 'runtime' as const, message: `could not create an interpreter: ${(err as Error).message}` };
    send({ type: 'done', runId: msg.runId, outcome: { ok: false, error, logs: [], stats: { durationMs: 0, hostCalls: 0, outputBytes: 0, memoryBytes: 0 } }, retire: true });
    return;
  }
  await new Promise<void>((resolve) => {
    const run = new GuestRun(interp, msg, cancel, send, () => {
      current = undefined;
      resolve();
    });
    current = run;
    try {
      run.start();
    } catch (err) {
      run.fail(`the sandbox worker failed: ${(err as Error).message}`);
    }
  });
  pool.recycle(interp);
  void pool.refill().catch(() => undefined);
}

port.on('message', (msg: ToWorker) => {
  switch (msg.type) {
    case 'run':
      // The host sends one run at a time; chaining keeps that true even if it ever did not.
      queue = queue.then(() => startRun(msg)).catch(() => undefined);
      break;
    case 'hostresults':
      if (current?.runId === msg.runId) current.onHostResults(msg.results);
      break;
    case 'cancel':
      if (current?.runId === msg.runId) current.onCancel();
      break;
  }
});

pool.refill().then(() => send({ type: 'ready' }), (err: Error) => {
  throw new Error(`sandbox worker could not instantiate QuickJS: ${err.message}`);
});
