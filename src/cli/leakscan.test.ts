import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

const ROOT = new URL('../..', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'bulwark-leakscan-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const SECRET = 'tg-Bot:9aF3kLm2Qx7Rz';

function leakscan(args: string[], input: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'leakscan', ...args], { cwd: ROOT, input, encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function secretFile(mode: number): string {
  const path = join(dir, `secrets-${mode.toString(8)}.env`);
  writeFileSync(path, `# test vault\nTELEGRAM_TOKEN=${SECRET}\n\nOTHER=zz9Plural-Alpha\n`);
  chmodSync(path, mode);
  return path;
}

describe('bulwark leakscan', () => {
  it('--json: finds a base64-encoded vault secret and a credential format, and redacts both', () => {
    const leak = Buffer.from(`token=${SECRET}`).toString('base64');
    const r = leakscan(['--json', '--secret-file', secretFile(0o600)], `here you go: ${leak}\nand AKIAIOSFODNN7EXAMPLE\n`);
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { findings: Array<Record<string, unknown>>; redacted: string };
    assert.deepEqual(out.findings.map((f) => f.secret ?? f.pattern), ['TELEGRAM_TOKEN', 'aws-access-key']);
    assert.match(String(out.findings[0]!.encoding), /^base64@/);
    assert.equal(out.redacted, 'here you go: [REDACTED:TELEGRAM_TOKEN]\nand [REDACTED:aws-access-key]\n');
    assert.ok(!r.stdout.includes(SECRET) && !r.stdout.includes(leak));
  });

  it('human output lists findings by name and prints the redacted text', () => {
    const r = leakscan(['--secret-file', secretFile(0o600)], `reversed: ${[...SECRET].reverse().join('')}`);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /1 leak found:\n {2}secret TELEGRAM_TOKEN \(reversed\) at 10–30/);
    assert.match(r.stdout, /redacted text:\nreversed: \[REDACTED:TELEGRAM_TOKEN\]/);
  });

  it('refuses a secret file other users can read, with the chmod fix', () => {
    const path = secretFile(0o644);
    const r = leakscan(['--json', '--secret-file', path], 'x');
    assert.equal(r.status, 1);
    assert.match(r.stderr, /can be read by other users \(mode 0644\)/);
    assert.ok(r.stderr.includes(`fix: chmod 600 ${path}`));
    assert.ok(!r.stderr.includes(SECRET));
  });

  it('without --secret-file, still finds credential formats', () => {
    const r = leakscan(['--json'], 'ghp_a1B2a1B2a1B2a1B2a1B2a1B2a1B2a1B2a1B2');
    assert.deepEqual(JSON.parse(r.stdout).findings, [{ kind: 'pattern', pattern: 'github-token', start: 0, end: 40 }]);
  });
});
