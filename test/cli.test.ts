import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLlmStandIn, type StandIn } from './support/llm-standin.js';
import { startRedis, type Service } from './support/services.js';
import { startTestHub, standInEnv, type TestHub } from './support/hub.js';
import { runCli } from './support/process.js';

describe('bulwark CLI', () => {
  let redis: Service;
  let llm: StandIn;
  let t: TestHub;
  let env: Record<string, string>;

  before(async () => {
    redis = await startRedis();
    llm = await startLlmStandIn();
    t = await startTestHub({ env: { REDIS_URL: redis.url, ...standInEnv(llm.baseUrl) } });
    env = { BULWARK_HOME: t.home, BULWARK_PORT: new URL(t.url).port, REDIS_URL: redis.url, ...standInEnv(llm.baseUrl) };
  });
  after(async () => { await t?.close(); await llm?.close(); await redis?.stop(); });

  it('chat -m sends one message and prints the reply', async () => {
    const r = await runCli(['chat', '-m', 'ping from the cli'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'echo: ping from the cli');
  });

  it('chat reads one message per line from piped stdin, in one conversation', async () => {
    const r = await runCli(['chat'], env, 'first\nsecond\n');
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), ['echo: first', 'echo: second']);
    const last = llm.requests.at(-1)!;
    assert.deepEqual(last.messages.filter((m) => m.role !== 'system').map((m) => m.content), ['first', 'echo: first', 'second']);
  });

  it('status reports a ready hub, and --json is machine-readable', async () => {
    const r = await runCli(['status'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /hub: ready/);
    assert.match(r.stdout, /model: openai-compatible:standin-model/);
    const j = await runCli(['status', '--json'], env);
    const body = JSON.parse(j.stdout);
    assert.equal(body.role, 'all');
    assert.ok(body.checks.every((c: { ok: boolean }) => c.ok));
  });

  it('doctor checks everything, including the LLM, and exits 0 when all is well', async () => {
    const r = await runCli(['doctor'], env);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /ok {3}LLM: openai-compatible standin-model/);
    assert.match(r.stdout, /ok {3}hub: running and ready/);
    assert.match(r.stdout, /ok {3}vault: master key from .*master\.key \(0600\) opens the vault \(0 secrets\)/);
  });

  it('doctor names what is broken and how to fix it', async () => {
    const r = await runCli(['doctor'], { ...env, REDIS_URL: 'redis://127.0.0.1:1', BULWARK_LLM_BASE_URL: 'http://127.0.0.1:1/v1' });
    assert.equal(r.code, 1);
    assert.match(r.stdout, /FAIL Redis at redis:\/\/127\.0\.0\.1:1\/? is not reachable/);
    assert.match(r.stdout, /FAIL LLM: http:\/\/127\.0\.0\.1:1\/v1 is not reachable/);
    assert.match(r.stdout, /fix: /);
    const wrongKey = await runCli(['doctor'], { ...env, BULWARK_MASTER_KEY: Buffer.alloc(32, 7).toString('base64') });
    assert.match(wrongKey.stdout, /FAIL vault: the master key in BULWARK_MASTER_KEY does not open this database's vault/);
  });

  it('status and chat say the hub is not running instead of crashing', async () => {
    const r = await runCli(['status'], { ...env, BULWARK_PORT: '1' });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /the hub is not reachable at http:\/\/127\.0\.0\.1:1/);
    assert.doesNotMatch(r.stderr, /at .*\.ts:\d+/, 'no stack trace');
  });

  it('start refuses a bad configuration with the key and the fix, exit 2, no stack trace', async () => {
    const home = mkdtempSync(join(tmpdir(), 'bulwark-cli-'));
    try {
      const r = await runCli(['start'], { BULWARK_HOME: home, BULWARK_LLM_PROVIDER: 'openai-compatible', BULWARK_LLM_MODEL: 'x', BULWARK_PORTT: '1' });
      assert.equal(r.code, 2);
      assert.match(r.stderr, /BULWARK_PORTT: did you mean BULWARK_PORT\?/);
      assert.match(r.stderr, /llm\.base_url is required|BULWARK_LLM_BASE_URL/);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });

  it('start without Redis installed prints the install line, not a stack trace', async () => {
    const home = mkdtempSync(join(tmpdir(), 'bulwark-cli-'));
    try {
      // PATH holds only a link to node, so redis-server cannot be found (the hub also looks in
      // /usr/sbin, /usr/local/bin and /opt/homebrew/bin, where the test machine has none).
      symlinkSync(process.execPath, join(home, 'node'));
      const r = await runCli(['start'], { BULWARK_HOME: home, PATH: home });
      assert.equal(r.code, 1);
      assert.match(r.stderr, /redis-server was not found/);
      assert.match(r.stderr, /fix: install it \((sudo apt-get install -y redis-server|brew install redis)/);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });

  it('an unknown command says so on stderr and exits 1, also with --help; known commands still show their help', async () => {
    for (const [args, name] of [[['NOPE'], 'NOPE'], [['NOPE', '--help'], 'NOPE'], [['usage', '--help'], 'usage'], [['usage', '-h'], 'usage'], [['routine', 'NOPE', '--help'], 'NOPE'], [['help', 'NOPE'], 'NOPE']] as const) {
      const r = await runCli([...args], {});
      assert.equal(r.code, 1, args.join(' '));
      assert.match(r.stderr, new RegExp(`unknown command '${name}'`), args.join(' '));
      assert.equal(r.stdout, '', `${args.join(' ')}: no help printed as if the command existed`);
    }
    const typo = await runCli(['audit', 'verfy', '--help'], {});
    assert.equal(typo.code, 1);
    assert.match(typo.stderr, /unknown command 'verfy'\n\(Did you mean verify\?\)/);
    for (const [args, usage] of [[['--help'], 'Usage: bulwark \\[options\\] \\[command\\]'], [['routine', '--help'], 'Usage: bulwark routine'], [['routine', '-h'], 'Usage: bulwark routine'], [['help', 'routine'], 'Usage: bulwark routine'], [['routine', 'add', '--help'], 'Usage: bulwark routine add']] as const) {
      const r = await runCli([...args], {});
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stdout, new RegExp(usage), args.join(' '));
    }
  });

  it('--help works for every command', async () => {
    for (const cmd of ['start', 'chat', 'status', 'doctor', 'login']) {
      const r = await runCli([cmd, '--help'], {});
      assert.equal(r.code, 0, cmd);
      assert.match(r.stdout, new RegExp(`Usage: bulwark ${cmd}`));
    }
  });
});
