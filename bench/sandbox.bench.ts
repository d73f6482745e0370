/**
 * Sandbox benchmark. Prints one JSON object per line:
 *   (a) fresh interpreter per run (own WebAssembly memory, capped), `return 1+1`, through the
 *       public API (Sandbox.run: dispatch to a worker, run, result back, interpreter dropped)
 *   (b) node:vm running the same script in a new context, as a reference (not a security boundary)
 *   (c) host-call overhead per call, sequential and concurrent
 *   (d) (a) while two other guests spin at their CPU limit
 * Run: node --import tsx bench/sandbox.bench.ts
 */
import { availableParallelism } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import vm from 'node:vm';
import { z } from 'zod';
import { Sandbox, type HostFunction } from '../src/sandbox/index.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 1000);
// Gap between runs: an assistant's runs arrive seconds apart, which gives each worker time to
// refill its pool of pre-instantiated interpreters. BENCH_GAP_MS=0 measures back-to-back runs.
const GAP_MS = Number(process.env.BENCH_GAP_MS ?? 3);

function percentiles(samples: number[]): { p50: number; p99: number; mean: number } {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
  const round = (n: number) => Math.round(n * 1000) / 1000;
  return { p50: round(at(0.5)), p99: round(at(0.99)), mean: round(s.reduce((a, b) => a + b, 0) / s.length) };
}

function print(line: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

async function timeRuns(sandbox: Sandbox, runs: number, gapMs: number): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const r = await sandbox.run('return 1+1');
    samples.push(performance.now() - t0);
    if (!r.ok || r.value !== 2) throw new Error(`unexpected result ${JSON.stringify(r)}`);
    if (gapMs > 0) await sleep(gapMs);
  }
  return samples;
}

const noop: HostFunction<[]> = { name: 'bench.noop', args: z.tuple([]), async call() { return null; } };

async function main(): Promise<void> {
  const sandbox = new Sandbox({ hostFunctions: [noop] });
  await sandbox.warmup();
  await timeRuns(sandbox, 200, GAP_MS); // warm up workers, pools and JITs

  // (a) through the public API
  const a = percentiles(await timeRuns(sandbox, RUNS, GAP_MS));
  print({ bench: 'a_fresh_sandbox_return_1_plus_1', unit: 'ms', runs: RUNS, gapMs: GAP_MS, memoryCapMb: 32, ...a, target: 'p50 <= 1 ms' });
  const burst = percentiles(await timeRuns(sandbox, 200, 0));
  print({ bench: 'a_back_to_back_no_gap', unit: 'ms', runs: 200, ...burst, note: 'no idle time to refill the pool: many runs instantiate inline' });
  const unpooled = new Sandbox({ poolSize: 0 });
  await unpooled.warmup();
  await timeRuns(unpooled, 50, GAP_MS);
  const cold = percentiles(await timeRuns(unpooled, 300, GAP_MS));
  await unpooled.close();
  print({ bench: 'a_without_pool', unit: 'ms', runs: 300, ...cold, note: 'poolSize 0: every run instantiates its interpreter' });

  // (b) node:vm reference
  const vmSamples: number[] = [];
  for (let i = 0; i < RUNS + 200; i++) {
    const t0 = performance.now();
    const value = vm.runInNewContext('1+1', {}, { timeout: 2000 });
    const dt = performance.now() - t0;
    if (value !== 2) throw new Error('vm broke');
    if (i >= 200) vmSamples.push(dt);
  }
  const b = percentiles(vmSamples);
  print({ bench: 'b_node_vm_new_context_reference', unit: 'ms', runs: RUNS, ...b, ratio_a_over_b_p50: Math.round((a.p50 / b.p50) * 100) / 100 });

  // (c) host-call overhead
  const N = 2000;
  const grant = { http: [], tools: ['bench.noop'] };
  const limits = { hostCalls: N + 10, timeoutMs: 30_000 };
  const timeCode = async (code: string): Promise<number> => {
    const samples: number[] = [];
    for (let i = 0; i < 15; i++) {
      const r = await sandbox.run(code, { grant, limits });
      if (!r.ok) throw new Error(`${r.error.kind}: ${r.error.message}`);
      samples.push(r.stats.durationMs);
      await sleep(GAP_MS);
    }
    return percentiles(samples).p50;
  };
  const base = await timeCode(`for (let i = 0; i < ${N}; i++) await Promise.resolve(null); return 1`);
  const seq = await timeCode(`for (let i = 0; i < ${N}; i++) await tools.bench.noop(); return 1`);
  const par = await timeCode(`await Promise.all(Array.from({ length: ${N} }, () => tools.bench.noop())); return 1`);
  const perCall = (t: number) => Math.round(((t - base) / N) * 1000 * 100) / 100;
  print({
    bench: 'c_host_call_overhead', unit: 'us_per_call', calls: N, sequential: perCall(seq), concurrent: perCall(par), target: '<= 20 us',
    note: 'sequential: `await` each call, two thread hops per call; concurrent: Promise.all, calls and answers travel in batches',
  });

  // (d) (a) while two guests spin at their CPU limit
  let spinning = true;
  const spinner = async (): Promise<void> => {
    while (spinning) await sandbox.run('for (;;) {}', { limits: { timeoutMs: 2000 } });
  };
  const spinners = [spinner(), spinner()];
  await sleep(50);
  const d = percentiles(await timeRuns(sandbox, RUNS, GAP_MS));
  spinning = false;
  print({ bench: 'd_fresh_sandbox_while_two_guests_spin', unit: 'ms', runs: RUNS, ...d, unloaded_p99: a.p99, p99_increase: Math.round((d.p99 - a.p99) * 1000) / 1000, cpus: availableParallelism(), target: 'p99 <= unloaded p99 + 5 ms' });
  await Promise.all(spinners);
  await sandbox.close();
}

await main();
