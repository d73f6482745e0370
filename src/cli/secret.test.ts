import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

const ROOT = new URL('../..', import.meta.url).pathname;
const home = mkdtempSync(join(tmpdir(), 'bulwark-secret-cli-'));
after(() => rmSync(home, { recursive: true, force: true }));

const VALUE = 'ghp_cliTestValue0123456789abcdefABCDEFGH';

function bulwark(args: string[], input = ''): { status: number | null; stdout: string; stderr: string } {
  // A port nothing listens on, so rotate-master's "is a hub running?" check finds none.
  const env = { ...process.env, BULWARK_HOME: home, BULWARK_PORT: '1', BULWARK_MASTER_KEY: '', NODE_ENV: 'test' };
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { cwd: ROOT, input, env, encoding: 'utf8', timeout: 60_000 });
  assert.ok(!r.stdout.includes(VALUE) && !r.stderr.includes(VALUE), `the value was printed by: bulwark ${args.join(' ')}`);
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('bulwark secret', () => {
  it('add reads the value from stdin; list shows names and policies, never values; leakscan uses the vault; rm removes', () => {
    const add = bulwark(['secret', 'add', 'GH', '--host', 'api.github.com', '--header', 'Authorization: Bearer {value}'], `${VALUE}\n`);
    assert.equal(add.status, 0, add.stderr);
    assert.match(add.stdout, /stored GH .*\{\{secret:GH\}\}/);

    const list = bulwark(['secret', 'list', '--json']);
    assert.equal(list.status, 0, list.stderr);
    const parsed = JSON.parse(list.stdout) as Array<{ name: string; policy: { hosts: string[]; headers: string[]; methods: string[] } }>;
    assert.deepEqual(parsed.map((s) => [s.name, s.policy.hosts, s.policy.headers, s.policy.methods]), [['GH', ['api.github.com'], ['Authorization: Bearer {value}'], ['GET', 'POST']]]);
    assert.match(bulwark(['secret', 'list']).stdout, /^GH\thosts api\.github\.com; header "Authorization: Bearer \{value\}"; methods GET, POST\n$/);

    const scan = bulwark(['leakscan', '--json'], `here: ${Buffer.from(VALUE).toString('base64')}`);
    assert.equal(scan.status, 0, scan.stderr);
    assert.deepEqual((JSON.parse(scan.stdout) as { findings: Array<{ secret?: string }> }).findings.map((f) => f.secret), ['GH']);

    const dup = bulwark(['secret', 'add', 'GH', '--host', 'api.github.com', '--header', 'X-Token: {value}'], 'another-value-123');
    assert.equal(dup.status, 1);
    assert.match(dup.stderr, /already exists[\s\S]*--replace/);

    assert.equal(bulwark(['secret', 'rm', 'GH']).status, 0);
    const again = bulwark(['secret', 'rm', 'GH']);
    assert.equal(again.status, 1);
    assert.match(again.stderr, /no secret named GH/);
  });

  it('channel credentials take no destination: the hub uses them, the agent never can', () => {
    const add = bulwark(['secret', 'add', 'telegram.token'], '123456789:AAFakeTelegramBotTokenForTheTest');
    assert.equal(add.status, 0, add.stderr);
    assert.match(bulwark(['secret', 'list']).stdout, /telegram\.token\tchannel credential: used by the hub, never by the agent/);
    const withHost = bulwark(['secret', 'add', 'slack.bot_token', '--host', 'slack.com', '--header', 'Authorization: Bearer {value}'], 'xoxb-fake-value-123');
    assert.equal(withHost.status, 1);
    assert.match(withHost.stderr, /channel credential/);
    assert.equal(bulwark(['secret', 'rm', 'telegram.token']).status, 0);
  });

  it('refuses a secret without a destination or a placement, with the fix', () => {
    const noHost = bulwark(['secret', 'add', 'X'], 'some-value-123');
    assert.equal(noHost.status, 1);
    assert.match(noHost.stderr, /say where X may be sent[\s\S]*fix: add --host/);
    const noPlace = bulwark(['secret', 'add', 'X', '--host', 'api.example.com'], 'some-value-123');
    assert.equal(noPlace.status, 1);
    assert.match(noPlace.stderr, /at least one --header, --query or --body/);
  });

  it('rotate-master replaces the key file and everything still opens; a readable key file is refused', () => {
    assert.equal(bulwark(['secret', 'add', 'GH', '--host', 'api.github.com', '--header', 'Authorization: Bearer {value}'], VALUE).status, 0);
    const before = readFileSync(join(home, 'master.key'), 'utf8');
    const rotated = bulwark(['secret', 'rotate-master']);
    assert.equal(rotated.status, 0, rotated.stderr);
    assert.match(rotated.stdout, /re-encrypted 1 secrets/);
    assert.notEqual(readFileSync(join(home, 'master.key'), 'utf8'), before);
    assert.equal(JSON.parse(bulwark(['secret', 'list', '--json']).stdout).length, 1);
    const scan = bulwark(['leakscan', '--json'], VALUE);
    assert.ok((JSON.parse(scan.stdout) as { findings: Array<{ secret?: string }> }).findings.some((f) => f.secret === 'GH'), 'the rotated vault still decrypts');

    chmodSync(join(home, 'master.key'), 0o644);
    const refused = bulwark(['secret', 'list']);
    assert.equal(refused.status, 1);
    assert.match(refused.stderr, /can be read by other users[\s\S]*fix: chmod 600/);
    chmodSync(join(home, 'master.key'), 0o600);
  });
});
