/**
 * Leak detector benchmark. Prints one JSON object per line:
 *   build   time to precompute every encoding of 50 secrets and build the automata
 *   scan    MB/s of LeakDetector.scan on ~5 MB of mixed prose, code and logs, clean and with planted leaks
 *   benign  findings on the clean text (every one is a false positive), from the patterns and from the vault
 *   draft   what one Telegram draft costs: visiblePrefix (redact + hold-back) on a long answer as it
 *           grows, one call per second of writing; the hold-back window the 50 secrets need
 * Run: node --import tsx bench/leak.bench.ts   (BENCH_MB=… to change the size)
 */
import { visiblePrefix } from '../src/channels/drafts.js';
import { LeakDetector } from '../src/vault/leak.js';
import { caesar } from '../src/vault/variants.js';
import { benignText, randomVault, rng } from '../test/fixtures/leak-corpus.js';

const MB = Number(process.env.BENCH_MB ?? 5);
const RUNS = 5;

function print(line: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

const vault = randomVault(50);
const t0 = performance.now();
const detector = new LeakDetector(vault);
print({ bench: 'build', secrets: vault.length, ms: Math.round(performance.now() - t0), tableMB: Math.round(detector.tableBytes / 1e5) / 10 });

const clean = benignText(MB * 1e6);

const encoders: Array<(s: string) => string> = [
  (s) => s,
  (s) => Buffer.from(`prefix:${s}:suffix`).toString('base64'),
  (s) => Buffer.from(s).toString('hex'),
  (s) => encodeURIComponent(s).replace(/[A-Z]/g, (c) => `%${c.charCodeAt(0).toString(16)}`),
  (s) => [...s].reverse().join(''),
  (s) => caesar(s, 13),
  (s) => [...s].join(' '),
  (s) => `${s.slice(0, 8)} and then ${s.slice(8)}`,
];
function plant(text: string, every: number): { text: string; planted: Array<{ start: number; end: number }> } {
  const r = rng(99);
  const parts: string[] = [];
  const planted: Array<{ start: number; end: number }> = [];
  let length = 0;
  for (let at = 0; at < text.length; at += every) {
    const chunk = `${text.slice(at, at + every)} `;
    const leak = encoders[planted.length % encoders.length]!(vault[Math.floor(r() * vault.length)]!.value);
    planted.push({ start: length + chunk.length, end: length + chunk.length + leak.length });
    parts.push(chunk, leak, ' ');
    length += chunk.length + leak.length + 1;
  }
  return { text: parts.join(''), planted };
}
const leaky = plant(clean, 50_000);

function measure(name: string, text: string, planted?: Array<{ start: number; end: number }>): void {
  detector.scan(text); // warm-up
  const times: number[] = [];
  let findings: ReturnType<LeakDetector['scan']> = [];
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now();
    findings = detector.scan(text);
    times.push(performance.now() - t);
  }
  const caught = planted?.filter((p) => findings.some((f) => f.kind === 'secret' && f.start < p.end && p.start < f.end)).length;
  const best = Math.min(...times);
  const median = [...times].sort((a, b) => a - b)[Math.floor(RUNS / 2)]!;
  print({ bench: 'scan', text: name, MB: Math.round(text.length / 1e5) / 10, secrets: vault.length, MBps_median: Math.round(text.length / 1e3 / median), MBps_best: Math.round(text.length / 1e3 / best), findings: findings.length, ...(planted ? { planted: planted.length, plantedCaught: caught } : {}) });
}

measure('clean', clean);
measure('planted-leaks', leaky.text, leaky.planted);

const benign = detector.scan(clean);
print({ bench: 'benign', MB: Math.round(clean.length / 1e5) / 10, falsePositives: benign.length, fromPatterns: benign.filter((f) => f.kind === 'pattern').length, fromVault: benign.filter((f) => f.kind === 'secret').length });

// A 16 KB answer drafted at 1 KB steps (about one draft per second for a fast model): the guard
// re-reads the whole text so far each time.
{
  const answer = clean.slice(0, 16_000);
  const t = performance.now();
  let calls = 0;
  for (let end = 1000; end <= answer.length; end += 1000, calls++) visiblePrefix(answer.slice(0, end), detector);
  const ms = performance.now() - t;
  print({ bench: 'draft', answerKB: 16, drafts: calls, msPerDraft: Math.round((ms / calls) * 100) / 100, holdChars: Math.max(1024, detector.maxSpan) });
}
