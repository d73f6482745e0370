#!/usr/bin/env node
// Makes a fresh machine ready to run Bulwark (and, with --tests, its test suite):
// checks Node, installs Redis (and PostgreSQL for the tests) when it can, installs npm packages,
// and generates the Prisma clients. Every failure ends with the exact command to run, never a stack.
import { existsSync, statSync, readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { delimiter, join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const forTests = process.argv.includes('--tests');
const say = (m) => process.stderr.write(`setup: ${m}\n`);
const stop = (m, fix) => { process.stderr.write(`setup: ${m}\n${fix ? `  fix: ${fix}\n` : ''}`); process.exit(1); };

const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 20 || (major === 20 && minor < 19)) stop(`Node ${process.versions.node} is too old; Bulwark needs Node 20.19 or newer.`, 'install a current Node LTS (https://nodejs.org, or `nvm install 22`)');

function onPath(bin, extra = []) {
  for (const dir of [...(process.env.PATH ?? '').split(delimiter), ...extra]) {
    if (dir && existsSync(join(dir, bin))) return join(dir, bin);
  }
  return undefined;
}
const run = (cmd, args, opts = {}) => spawnSync(cmd, args, { stdio: 'inherit', ...opts }).status === 0;
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const hasApt = existsSync('/usr/bin/apt-get');

function installHint(pkgApt, pkgBrew) {
  if (process.platform === 'darwin') return `brew install ${pkgBrew}`;
  if (hasApt) return `sudo apt-get install -y ${pkgApt}`;
  return `install ${pkgBrew} with your package manager`;
}

function ensurePackage({ what, found, apt, brew }) {
  if (found()) return;
  if (process.platform === 'linux' && hasApt && isRoot) {
    say(`${what} is missing: installing ${apt} with apt-get`);
    if (!run('apt-get', ['update', '-qq']) || !run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...apt.split(' ')], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } })) {
      stop(`installing ${apt} failed.`, `run: sudo apt-get install -y ${apt}`);
    }
  } else if (process.platform === 'darwin' && onPath('brew', ['/opt/homebrew/bin', '/usr/local/bin'])) {
    say(`${what} is missing: installing ${brew} with Homebrew`);
    if (!run(onPath('brew', ['/opt/homebrew/bin', '/usr/local/bin']), ['install', brew])) stop(`brew install ${brew} failed.`, `run: brew install ${brew}`);
  } else {
    stop(`${what} is required but not installed.`, `run: ${installHint(apt, brew)}${what === 'Redis' ? '   (or set REDIS_URL to an existing server)' : ''}`);
  }
  if (!found()) stop(`${what} is still missing after installing it.`, `run: ${installHint(apt, brew)}`);
}

const redisDirs = ['/usr/sbin', '/usr/local/sbin', '/usr/local/bin', '/opt/homebrew/bin'];
if (forTests || !process.env.REDIS_URL) {
  ensurePackage({ what: 'Redis', found: () => onPath('redis-server', redisDirs), apt: 'redis-server', brew: 'redis' });
}
if (forTests) {
  const pgBin = () => onPath('initdb') || (existsSync('/usr/lib/postgresql') && readdirSync('/usr/lib/postgresql').some((v) => existsSync(`/usr/lib/postgresql/${v}/bin/initdb`)));
  ensurePackage({ what: 'PostgreSQL (for the PostgreSQL tests)', found: pgBin, apt: 'postgresql', brew: 'postgresql@16' });
}

// npm packages: install when node_modules is missing or older than the lock file.
const lock = join(root, 'package-lock.json');
const marker = join(root, 'node_modules', '.package-lock.json');
if (!existsSync(marker) || statSync(marker).mtimeMs < statSync(lock).mtimeMs) {
  say('installing npm packages (npm ci)');
  if (!run('npm', ['ci', '--no-audit', '--no-fund'], { cwd: root })) stop('npm ci failed.', `run \`npm ci\` in ${root} and read its error`);
}

if (!run(process.execPath, [join(root, 'scripts/prisma-generate.mjs')], { cwd: root })) stop('generating the Prisma clients failed.');
say('ready');
