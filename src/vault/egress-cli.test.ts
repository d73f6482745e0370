// `bulwark sandbox run --secret NAME` as a real process, against a real vault in a temporary home
// and a real server that echoes the credential back.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../config/load.js';
import { openVault } from './index.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const VALUE = 'cli_Z7xC4vB1nM8qW5eR2tY9';

describe('bulwark sandbox run --secret', () => {
  let home: string;
  let server: Server;
  let base = '';
  const received: string[] = [];
  const env = (): NodeJS.ProcessEnv => ({ PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', BULWARK_HOME: home });

  function cli(args: string[], code: string): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      const child = execFile(process.execPath, ['--import', 'tsx', 'src/cli/sandbox-main.ts', 'run', '-', ...args], { cwd: ROOT, env: env() }, (err, stdout, stderr) => {
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
      });
      child.stdin?.end(code);
    });
  }

  before(async () => {
    home = await mkdtemp(join(tmpdir(), 'bulwark-egress-cli-'));
    server = createServer((req, res) => {
      received.push(req.headers.authorization ?? '');
      res.end(`you sent ${req.headers.authorization ?? 'nothing'}`);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const vault = await openVault(loadConfig(env()));
    try {
      await vault.vault.add('API_TOKEN', VALUE, { hosts: [base], headers: ['Authorization: Bearer {value}'] });
    } finally {
      await vault.close();
    }
  });
  after(async () => {
    await new Promise((r) => server.close(r));
    await rm(home, { recursive: true, force: true });
  });

  it('hands the guest the handle; the value reaches the server, not the output', async () => {
    const code = `const r = await tools.http.fetch(${JSON.stringify(`${base}/x`)}, { headers: { authorization: secrets.API_TOKEN } }); return r.body`;
    const { code: exit, stdout, stderr } = await cli(['--json', '--secret', 'API_TOKEN', '--allow-host', base], code);
    assert.equal(exit, 0, stderr);
    assert.equal(received.at(-1), `Bearer ${VALUE}`);
    const out = JSON.parse(stdout);
    assert.equal(out.value, 'you sent Bearer [REDACTED:API_TOKEN]');
    assert.deepEqual(out.egress.map((e: { kind: string }) => e.kind), ['response_scrubbed', 'request']);
    assert.ok(!stdout.includes(VALUE) && !stderr.includes(VALUE), 'the output holds the secret');
  });

  it('refuses a name that is not in the vault before running anything', async () => {
    const { code, stderr } = await cli(['--secret', 'NOPE'], 'return 1');
    assert.notEqual(code, 0);
    assert.match(stderr, /no secret named NOPE in the vault/);
    const bad = await cli(['--secret', 'not a name'], 'return 1');
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /secrets/);
  });
});
