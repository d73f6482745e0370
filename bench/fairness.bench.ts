/*
 * Fairness benchmark: the reply latency of a quiet conversation (one message at a time, as a
 * person chats) while other conversations hang their model calls, flood the sandbox with spinning
 * run_code calls, or pile up a backlog; and how fast one conversation's backlog drains with a
 * model that answers at once. The hub runs as its own process as a user gets it by default
 * (embedded Redis, SQLite, default settings), from the sources; the LLM is the test stand-in.
 *
 *   npm run bench:fairness -- [--quiet 30] [--hung 16] [--flooders 16] [--backlog 300]
 *
 * Prints JSON lines. Target: the quiet conversation's p99 under load ≤ 2× its unloaded p99.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lastUserText, startLlmStandIn, type ChatRequest, type Scripted } from '../test/support/llm-standin.js';
import { freePort } from '../test/support/services.js';
import { spawnHub } from '../test/support/process.js';
import { follow } from './sse.js';

const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const QUIET = arg('quiet', 30);
const HUNG = arg('hung', 16);
const FLOODERS = arg('flooders', 16);
const BACKLOG = arg('backlog', 300);
const print = (o: Record<string, unknown>) => process.stdout.write(JSON.stringify(o) + '\n');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const pct = (xs: number[], p: number) => {
  const s = xs.slice().sort((a, b) => a - b);
  return +s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!.toFixed(1);
};
const stats = (xs: number[]) => ({ n: xs.length, p50: pct(xs, 50), p99: pct(xs, 99), max: pct(xs, 100) });

/** The model: "hang…" waits for the bench, "spin…" floods run_code while flooding is on, "code…" runs one small snippet. */
let releaseHung!: () => void;
let hung = new Promise<void>((r) => { releaseHung = r; });
let flooding = false;
const toolResults = (req: ChatRequest) => req.messages.filter((m) => m.role === 'tool').length;
async function model(req: ChatRequest): Promise<Scripted> {
  const text = lastUserText(req);
  if (text.startsWith('hang')) { await hung; return { text: 'late' }; }
  if (text.startsWith('spin')) {
    if (!flooding) return { text: 'stopped spinning' };
    return { toolCalls: Array.from({ length: 8 }, () => ({ name: 'run_code', args: { code: 'for (;;) {}' } })) };
  }
  if (text.startsWith('code')) return toolResults(req) === 0 ? { toolCalls: [{ name: 'run_code', args: { code: 'return 6 * 7' } }] } : { text: 'ran it' };
  return { text: `echo: ${text}` };
}


async function main() {
  const home = mkdtempSync(join(tmpdir(), 'bulwark-bench-fair-'));
  const llm = await startLlmStandIn(model);
  const hub = await spawnHub('all', {
    BULWARK_HOME: home, BULWARK_PORT: String(await freePort()), BULWARK_LOG_LEVEL: 'warn',
    BULWARK_LLM_PROVIDER: 'openai-compatible', BULWARK_LLM_BASE_URL: llm.baseUrl, BULWARK_LLM_MODEL: 'standin-model',
    // The hung calls are released by the bench, long before this.
    BULWARK_LLM_TIMEOUT_MS: '120000',
  }, 60_000);
  const token = readFileSync(join(home, 'api-token'), 'utf8').trim();
  const streams: AbortController[] = [];
  const waiters = new Map<string, () => void>();
  const replied = new Set<string>();
  const onReply = (e: { replyTo: string }) => { replied.add(e.replyTo); waiters.get(e.replyTo)?.(); waiters.delete(e.replyTo); };

  const post = async (text: string, conversationId?: string) => {
    const r = await fetch(`${hub.url}/api/messages`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ text, ...(conversationId ? { conversationId } : {}) }) });
    if (r.status !== 202) throw new Error(`POST ${r.status}: ${await r.text()}`);
    return (await r.json()) as { conversationId: string; messageId: string };
  };
  const reply = (messageId: string) => (replied.has(messageId) ? Promise.resolve() : new Promise<void>((r) => waiters.set(messageId, r)));
  /** A conversation with its event stream open; returns its id once its first message is answered. */
  const open = async (text: string, wait = true) => {
    const first = await post(text);
    streams.push(follow(`${hub.url}/api/conversations/${first.conversationId}/events`, token, onReply));
    if (wait) await reply(first.messageId);
    return { ...first, conversationId: first.conversationId };
  };
  const quietRun = async (conversationId: string, prefix: string, n: number) => {
    const ms: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      const { messageId } = await post(`${prefix} ${i}`, conversationId);
      await reply(messageId);
      ms.push(performance.now() - t0);
    }
    return ms;
  };

  const quiet = await open('hello');
  await quietRun(quiet.conversationId, 'warm', 10);
  await quietRun(quiet.conversationId, 'code warm', 3);
  const base = { hello: stats(await quietRun(quiet.conversationId, 'hello', QUIET)), code: stats(await quietRun(quiet.conversationId, 'code', Math.ceil(QUIET / 3))) };
  print({ bench: 'fairness', scenario: 'unloaded', quietHelloMs: base.hello, quietCodeMs: base.code });
  const ratio = (s: { p99: number }, b: { p99: number }) => +(s.p99 / b.p99).toFixed(2);

  // (a) N conversations whose model calls hang.
  const stuck = await Promise.all(Array.from({ length: HUNG }, (_, i) => open(`hang ${i}`, false)));
  while (llm.requests.filter((r) => lastUserText(r).startsWith('hang')).length < HUNG) await sleep(20);
  const hungHello = stats(await quietRun(quiet.conversationId, 'hello', QUIET));
  print({ bench: 'fairness', scenario: `${HUNG} conversations with hung model calls`, quietHelloMs: hungHello, p99VsUnloaded: ratio(hungHello, base.hello) });
  releaseHung();
  await Promise.all(stuck.map((s) => reply(s.messageId)));
  hung = new Promise<void>((r) => { releaseHung = r; });

  // (b) conversations flooding the sandbox with spinning run_code calls (8 per model step).
  for (const n of [1, FLOODERS]) {
    flooding = true;
    const flood = await Promise.all(Array.from({ length: n }, (_, i) => open(`spin ${i}`, false)));
    await sleep(1000);
    const hello = stats(await quietRun(quiet.conversationId, 'hello', QUIET));
    const code = stats(await quietRun(quiet.conversationId, 'code', Math.ceil(QUIET / 3)));
    print({ bench: 'fairness', scenario: `${n} conversation(s) flooding run_code with spinning code`, quietHelloMs: hello, quietCodeMs: code, helloP99VsUnloaded: ratio(hello, base.hello), codeP99VsUnloaded: ratio(code, base.code) });
    flooding = false;
    await Promise.all(flood.map((f) => reply(f.messageId)));
  }

  // (c) one conversation with a backlog: held by a hung first turn while it piles up, then
  // released; the quiet conversation chats during the first drain, nobody during the second.
  const busy = await open('backlog start');
  const drain = async (label: string, withQuiet: boolean) => {
    const before = llm.requests.length;
    const head = await post(`hang ${label}`, busy.conversationId);
    while (!llm.requests.slice(before).some((r) => lastUserText(r) === `hang ${label}`)) await sleep(20);
    const ids: string[] = [];
    for (let i = 0; i < BACKLOG; i++) ids.push((await post(`${label} ${i}`, busy.conversationId)).messageId);
    const t0 = performance.now();
    releaseHung();
    const hello = withQuiet ? stats(await quietRun(quiet.conversationId, 'hello', QUIET)) : undefined;
    await reply(head.messageId);
    await reply(ids.at(-1)!);
    const seconds = (performance.now() - t0) / 1000;
    hung = new Promise<void>((r) => { releaseHung = r; });
    return { hello, seconds };
  };
  const loaded = await drain('backlog', true);
  print({ bench: 'fairness', scenario: `one conversation draining ${BACKLOG} queued messages`, quietHelloMs: loaded.hello, p99VsUnloaded: ratio(loaded.hello!, base.hello) });
  const alone = await drain('drain', false);
  print({ bench: 'fairness', scenario: 'single-conversation drain (instant model)', messages: BACKLOG, seconds: +alone.seconds.toFixed(2), turnsPerSecond: +(BACKLOG / alone.seconds).toFixed(1), whileQuietChats: { seconds: +loaded.seconds.toFixed(2), turnsPerSecond: +(BACKLOG / loaded.seconds).toFixed(1) } });

  for (const s of streams) s.abort();
  hub.child.kill('SIGTERM');
  await hub.exited;
  await llm.close();
  rmSync(home, { recursive: true, force: true });
}

main().catch((err) => { console.error(err); process.exit(1); });
