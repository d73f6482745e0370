// The `bulwark sandbox run` command, run as a real process through its stand-alone entry.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

function cli(args: string[], stdin?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, ['--import', 'tsx', 'src/cli/sandbox-main.ts', 'run', ...args], { cwd: ROOT }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
    child.stdin?.end(stdin ?? '');
  });
}

describe('bulwark sandbox run', () => {
  let dir: string;
  before(async () => { dir = await mkdtemp(join(tmpdir(), 'bulwark-cli-')); });
  after(() => rm(dir, { recursive: true, force: true }));

  it('prints one JSON object for a successful run', async () => {
    const file = join(dir, 'ok.js');
    await writeFile(file, 'console.log("hello"); return { sum: 1 + 1 }');
    const { code, stdout } = await cli([file, '--json']);
    assert.equal(code, 0);
    const out = JSON.parse(stdout);
    assert.deepEqual({ ok: out.ok, value: out.value, logs: out.logs }, { ok: true, value: { sum: 2 }, logs: ['hello'] });
    assert.equal(typeof out.stats.durationMs, 'number');
  });

  it('exits 0 with a typed error when the guest fails, reading code from stdin', async () => {
    const { code, stdout } = await cli(['-', '--json', '--timeout-ms', '100'], 'for (;;) {}');
    assert.equal(code, 0);
    assert.deepEqual(JSON.parse(stdout).error.kind, 'timeout');
    const human = await cli(['-', '--memory-mb', '16'], 'throw new Error("nope")');
    assert.equal(human.code, 0);
    assert.match(human.stdout, /^error \(runtime\): Error: nope/);
  });

  it('passes --allow-host into the grant', async () => {
    const { stdout } = await cli(['-', '--json', '--allow-host', 'api.github.com'], 'return typeof tools.http.fetch');
    assert.equal(JSON.parse(stdout).value, 'function');
  });

  it('exits nonzero with a clear message when misused', async () => {
    const missing = await cli([join(dir, 'nope.js')]);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /cannot read .*nope\.js: ENOENT/);
    const badHost = await cli(['-', '--allow-host', 'https://x.com/path'], 'return 1');
    assert.notEqual(badHost.code, 0);
    assert.match(badHost.stderr, /http grant/);
    const badNumber = await cli(['-', '--timeout-ms', 'soon'], 'return 1');
    assert.notEqual(badNumber.code, 0);
    assert.match(badNumber.stderr, /timeout-ms/);
  });
});
