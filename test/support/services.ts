import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { findRedisServer } from '../../src/redis/embedded.js';

/*
 * Real services for tests: a Redis server and a throwaway PostgreSQL cluster, each on a random port
 * on 127.0.0.1, stopped by its own PID.
 */

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

async function waitFor(fn: () => Promise<boolean>, what: string, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await fn().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what} did not become ready in ${ms} ms`);
}

export interface Service { url: string; pid: number; stop(): Promise<void> }

async function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const done = new Promise<void>((r) => child.once('exit', () => r()));
  process.kill(child.pid!, signal);
  const t = setTimeout(() => { try { process.kill(child.pid!, 'SIGKILL'); } catch { /* gone */ } }, 10_000);
  await done;
  clearTimeout(t);
}

/** A throwaway redis-server on 127.0.0.1; `dir` is where SAVE writes its dump (default: its cwd). */
export async function startRedis(opts: { dir?: string } = {}): Promise<Service> {
  const bin = findRedisServer();
  if (!bin) throw new Error('redis-server is not installed: run `node scripts/setup.mjs --tests` (or apt-get install redis-server)');
  const port = await freePort();
  const child = spawn(bin, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--maxmemory-policy', 'noeviction', ...(opts.dir ? ['--dir', opts.dir] : [])], { stdio: 'ignore' });
  const url = `redis://127.0.0.1:${port}`;
  await waitFor(async () => {
    const c = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    c.on('error', () => undefined);
    try { await c.connect(); return (await c.ping()) === 'PONG'; } finally { c.disconnect(); }
  }, 'redis-server');
  return { url, pid: child.pid!, stop: () => stopChild(child) };
}

export function findPgBin(): string | undefined {
  const fromPath = spawnSync('sh', ['-c', 'command -v initdb'], { encoding: 'utf8' }).stdout.trim();
  if (fromPath) return join(fromPath, '..');
  if (!existsSync('/usr/lib/postgresql')) return undefined;
  const versions = readdirSync('/usr/lib/postgresql').sort().reverse();
  for (const v of versions) if (existsSync(`/usr/lib/postgresql/${v}/bin/initdb`)) return `/usr/lib/postgresql/${v}/bin`;
  return undefined;
}

/** A throwaway PostgreSQL cluster in a temp dir, with a database named "bulwark". */
export async function startPostgres(): Promise<Service> {
  const bin = findPgBin();
  if (!bin) throw new Error('PostgreSQL server binaries not found: run `node scripts/setup.mjs --tests` (or apt-get install postgresql)');
  const dir = mkdtempSync(join(tmpdir(), 'bulwark-pg-'));
  const data = join(dir, 'data');
  // PostgreSQL refuses to run as root; tests running as root hand the cluster to "nobody".
  const ids = process.getuid?.() === 0
    ? { uid: Number(spawnSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).stdout.trim()), gid: Number(spawnSync('id', ['-g', 'nobody'], { encoding: 'utf8' }).stdout.trim()) }
    : {};
  if ('uid' in ids) spawnSync('chown', ['-R', `${ids.uid}:${ids.gid}`, dir]);
  const init = spawnSync(join(bin, 'initdb'), ['-D', data, '-U', 'bulwark', '--auth=trust', '-E', 'UTF8', '--no-sync'], { encoding: 'utf8', ...ids });
  if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr}`);
  const port = await freePort();
  const args = ['-D', data, '-p', String(port), '-h', '127.0.0.1', '-k', dir, '-c', 'fsync=off', '-c', 'full_page_writes=off', '-c', 'synchronous_commit=off'];
  const child = spawn(join(bin, 'postgres'), args, { stdio: 'ignore', ...ids });
  const base = `postgres://bulwark@127.0.0.1:${port}`;
  const pg = (await import('pg')).default;
  await waitFor(async () => {
    const c = new pg.Client({ connectionString: `${base}/postgres` });
    try { await c.connect(); await c.query('SELECT 1'); return true; } finally { await c.end().catch(() => undefined); }
  }, 'postgres');
  const c = new pg.Client({ connectionString: `${base}/postgres` });
  await c.connect();
  await c.query('CREATE DATABASE bulwark');
  await c.end();
  return {
    url: `${base}/bulwark`,
    pid: child.pid!,
    stop: async () => { await stopChild(child, 'SIGINT'); rmSync(dir, { recursive: true, force: true }); },
  };
}
