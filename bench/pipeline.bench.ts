/*
 * Pipeline benchmark: N messages over C concurrent conversations through the web API → inbound
 * queue → agent worker (with an LLM stand-in that answers at once) → outbound queue → delivered to
 * an SSE listener. Each conversation sends its next message when the previous reply arrives, as a
 * person would. The hub runs as its own process, built (`npm run build`) and configured as a user
 * gets it by default: embedded Redis and SQLite. In the same run, raw BullMQ add+process of N no-op
 * jobs on the same Redis is the reference.
 *
 *   npm run bench:pipeline -- [--messages 5000] [--conversations 100] [--split]
 *
 * --split runs the documented scale-out instead: `--role gateway` and `--role worker` as two
 * processes over one Redis (started by the bench, AOF everysec as the embedded one), so both cores
 * serve the hub. RSS figures are then per process.
 *
 * Prints JSON lines.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue, Worker } from 'bullmq';
import { startLlmStandIn, echoHandler } from '../test/support/llm-standin.js';
import { freePort } from '../test/support/services.js';
import { findRedisServer } from '../src/redis/embedded.js';
import { follow } from './sse.js';

const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const N = arg('messages', 5000);
const C = arg('conversations', 100);
const SPLIT = process.argv.includes('--split');
const WARMUP = Math.min(500, Math.floor(N / 10));
const root = join(import.meta.dirname, '..');
const print = (o: Record<string, unknown>) => process.stdout.write(JSON.stringify(o) + '\n');

const pct = (xs: number[], p: number) => {
  const s = xs.slice().sort((a, b) => a - b);
  return +s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!.toFixed(2);
};

function procStatus(pid: number): { rssMb: number; hwmMb: number; cpuTicks: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(status)![1]);
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return { rssMb: +(kb('VmRSS') / 1024).toFixed(1), hwmMb: +(kb('VmHWM') / 1024).toFixed(1), cpuTicks: Number(stat[11]) + Number(stat[12]) };
}

async function cpuPercent(pid: number, ms: number): Promise<number> {
  const a = procStatus(pid).cpuTicks;
  await new Promise((r) => setTimeout(r, ms));
  const b = procStatus(pid).cpuTicks;
  return +(((b - a) / 100) / (ms / 1000) * 100).toFixed(2); // USER_HZ = 100
}


async function rawBullmq(socket: string, n: number, concurrency: number): Promise<number> {
  const connection = { path: socket, maxRetriesPerRequest: null };
  const q = new Queue('raw-reference', { connection, prefix: 'benchref' });
  let done = 0;
  let resolveAll!: () => void;
  const all = new Promise<void>((r) => { resolveAll = r; });
  const w = new Worker('raw-reference', async () => undefined, { connection, prefix: 'benchref', concurrency: 16 });
  w.on('completed', () => { if (++done === n) resolveAll(); });
  const t0 = performance.now();
  // Same shape as the hub run: C producers, each adding its share one after another.
  await Promise.all(Array.from({ length: concurrency }, async (_, c) => {
    for (let i = c; i < n; i += concurrency) await q.add('job', { text: 'hello', i }, { jobId: `ref-${i}`, removeOnComplete: { age: 3600, count: 1000 } });
  }));
  await all;
  const s = (performance.now() - t0) / 1000;
  await w.close();
  await q.obliterate({ force: true });
  await q.close();
  return n / s;
}

async function main() {
  const home = mkdtempSync(join(tmpdir(), 'bulwark-bench-'));
  const llm = await startLlmStandIn(echoHandler);
  const hubEnv = {
    PATH: process.env.PATH ?? '', BULWARK_HOME: home, BULWARK_LOG_LEVEL: 'warn',
    ...(process.env.BULWARK_WORKER_CONCURRENCY ? { BULWARK_WORKER_CONCURRENCY: process.env.BULWARK_WORKER_CONCURRENCY } : {}),
    BULWARK_LLM_PROVIDER: 'openai-compatible', BULWARK_LLM_BASE_URL: llm.baseUrl, BULWARK_LLM_MODEL: 'standin-model',
  };
  let socket = join(home, 'redis', 'redis.sock');
  let redisChild: ReturnType<typeof spawn> | undefined;
  if (SPLIT) {
    socket = join(home, 'bench-redis.sock');
    redisChild = spawn(findRedisServer()!, ['--port', '0', '--unixsocket', socket, '--unixsocketperm', '700', '--dir', home, '--appendonly', 'yes', '--appendfsync', 'everysec', '--save', '', '--maxmemory-policy', 'noeviction'], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 500));
    Object.assign(hubEnv, { REDIS_URL: `redis+unix://${socket}` });
  }
  const startRole = async (role: string) => {
    const port = await freePort();
    const child = spawn(process.execPath, [...(process.env.HUB_NODE_ARGS?.split(' ').filter(Boolean) ?? []), join(root, 'dist/cli/main.js'), 'start', '--role', role], {
      env: { ...hubEnv, BULWARK_PORT: String(port) },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (d) => { out += d; const m = /running \(\w+\) at (\S+)/.exec(out); if (m) resolve(m[1]!); });
      child.once('exit', (c) => reject(new Error(`hub (${role}) exited ${c}`)));
    });
    return { child, url };
  };
  const procs = SPLIT ? [await startRole('gateway'), await startRole('worker')] : [await startRole('all')];
  const hub = procs[0]!.child;
  const base = procs[0]!.url;
  const token = readFileSync(join(home, 'api-token'), 'utf8').trim();
  const pids = procs.map((p) => p.child.pid!);
  const pid = pids[0]!;
  await new Promise((r) => setTimeout(r, 3000));
  const idle = async (phase: string) => {
    const cpu = await Promise.all(pids.map((p) => cpuPercent(p, 5000)));
    print({ bench: 'pipeline', phase, mode: SPLIT ? 'split' : 'all', hubRssMb: pids.map((p) => procStatus(p).rssMb), hubCpuPercent: cpu });
  };
  await idle('idle-after-start');

  const post = async (text: string, conversationId?: string) => {
    const r = await fetch(`${base}/api/messages`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ text, ...(conversationId ? { conversationId } : {}) }) });
    if (r.status !== 202) throw new Error(`POST ${r.status}: ${await r.text()}`);
    return (await r.json()) as { conversationId: string; messageId: string };
  };

  // Open the conversations and their SSE streams.
  const waiters = new Map<string, () => void>();
  const convs: string[] = [];
  const streams: AbortController[] = [];
  for (let c = 0; c < C; c++) {
    const first = await post(`open ${c}`);
    convs.push(first.conversationId);
    streams.push(follow(`${base}/api/conversations/${first.conversationId}/events`, token, (e) => { waiters.get(e.replyTo)?.(); waiters.delete(e.replyTo); }));
  }
  await new Promise((r) => setTimeout(r, 500));

  const latencies: number[] = [];
  let sent = 0;
  const runLoad = async (total: number, record: boolean) => {
    let next = 0;
    await Promise.all(convs.map(async (conversationId) => {
      while (next < total) {
        next++;
        const t0 = performance.now();
        const { messageId } = await post(`message ${sent++}`, conversationId);
        await new Promise<void>((resolve) => { waiters.set(messageId, resolve); });
        if (record) latencies.push(performance.now() - t0);
      }
    }));
  };
  await runLoad(WARMUP, false);
  const t0 = performance.now();
  await runLoad(N, true);
  const seconds = (performance.now() - t0) / 1000;
  const peak = pids.map((p) => procStatus(p).hwmMb);

  const raw = await rawBullmq(socket, N, C);
  const hubRate = N / seconds;
  print({
    bench: 'pipeline', mode: SPLIT ? 'split (gateway + worker processes)' : 'all (one process, embedded Redis, SQLite)', messages: N, conversations: C, seconds: +seconds.toFixed(2),
    messagesPerSecond: +hubRate.toFixed(1),
    e2eMs: { p50: pct(latencies, 50), p95: pct(latencies, 95), p99: pct(latencies, 99), max: pct(latencies, 100) },
    hubPeakRssMb: peak,
    llmRequests: llm.requests.length,
  });
  print({ bench: 'pipeline', reference: 'raw BullMQ add+process (no-op jobs, same Redis, same N and producers)', jobsPerSecond: +raw.toFixed(1), hubToRawRatio: +(hubRate / raw).toFixed(3) });

  for (const s of streams) s.abort();
  await new Promise((r) => setTimeout(r, 3000));
  await idle('idle-after-load');

  for (const p of procs.reverse()) {
    p.child.kill('SIGTERM');
    await new Promise((r) => p.child.once('exit', r));
  }
  redisChild?.kill('SIGTERM');
  await llm.close();
  rmSync(home, { recursive: true, force: true });
}

main().catch((err) => { console.error(err); process.exit(1); });
