import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync, accessSync, constants } from 'node:fs';
import { createServer } from 'node:net';
import { join, delimiter } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { UserError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { RedisTarget } from '../queues.js';
import { RedisSupervisor, type RunningServer, type ServerState } from './supervisor.js';

/** Where redis-server usually lives when it is not on PATH (Homebrew, distro sbin). */
const EXTRA_DIRS = ['/usr/sbin', '/usr/local/sbin', '/usr/local/bin', '/opt/homebrew/bin'];

/** Finds redis-server on PATH (and the usual places outside it), or undefined. */
export function findRedisServer(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const dirs = [...(env.PATH ?? '').split(delimiter), ...EXTRA_DIRS].filter(Boolean);
  for (const dir of dirs) {
    const p = join(dir, 'redis-server');
    try { accessSync(p, constants.X_OK); return p; } catch { /* next */ }
  }
  return undefined;
}

/** The install line for this platform, for messages that must say exactly what to run. */
export function redisInstallHint(): string {
  if (process.platform === 'darwin') return 'brew install redis';
  if (existsSync('/etc/debian_version')) return 'sudo apt-get install -y redis-server';
  if (existsSync('/etc/fedora-release') || existsSync('/etc/redhat-release')) return 'sudo dnf install -y redis';
  if (existsSync('/etc/alpine-release')) return 'sudo apk add redis';
  return 'install Redis 6.2+ from your package manager';
}

export function redisServerVersion(bin: string): string | undefined {
  const r = spawnSync(bin, ['--version'], { encoding: 'utf8' });
  return /v=(\S+)/.exec(r.stdout ?? '')?.[1];
}

export interface EmbeddedRedis {
  target: RedisTarget;
  pid: number | undefined;
  /** up, or restarting after it exited on its own, or down (it kept exiting and was given up). */
  state(): ServerState;
  stop(): Promise<void>;
}

export interface EmbeddedRedisOptions {
  /** Told when the server exited on its own and when a restarted one answers (the hub's outage log). */
  onExit?(reason: string): void;
  onUp?(): void;
  /** For tests: a restart waits for this. */
  beforeRestart?(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      s.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 0));
    });
  });
}

async function ping(target: RedisTarget, password?: string): Promise<boolean> {
  const opts = { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1000, ...(password ? { password } : {}) };
  const client = 'path' in target ? new Redis({ ...opts, path: target.path }) : new Redis(target.url, opts);
  client.on('error', () => undefined);
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

/**
 * Runs redis-server as a child of the hub, reachable only by this user: a unix socket with mode 700
 * under the data directory (TCP on 127.0.0.1 with a random password when the socket path would be
 * too long). Append-only persistence is on, because accepted messages live in Redis until handled.
 * A server left behind by a hub that was killed is adopted and stopped with this one.
 */
export async function startEmbeddedRedis(home: string, logger: Logger, opts: EmbeddedRedisOptions = {}): Promise<EmbeddedRedis> {
  const bin = findRedisServer();
  if (!bin) {
    throw new UserError('Redis is required but redis-server was not found on PATH.', `install it (${redisInstallHint()}) or set REDIS_URL=redis://HOST:6379 to use an existing server`);
  }
  const dir = join(home, 'redis');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const socket = join(dir, 'redis.sock');
  const pidFile = join(dir, 'redis.pid');
  const logFile = join(dir, 'redis.log');
  const useSocket = socket.length < 100;
  const passFile = join(dir, 'password');

  let target: RedisTarget;
  let first: RunningServer;
  const args = ['--dir', dir, '--appendonly', 'yes', '--appendfsync', 'everysec', '--save', '', '--maxmemory-policy', 'noeviction', '--daemonize', 'no', '--logfile', logFile, '--pidfile', pidFile];
  if (useSocket && existsSync(socket) && (await ping({ path: socket }))) {
    const pid = Number(readFileSync(pidFile, 'utf8').trim()) || undefined;
    logger.warn({ socket, pid }, 'adopting a Redis server left running by an earlier hub');
    target = { path: socket };
    first = adopted(pid);
    args.push('--port', '0', '--unixsocket', socket, '--unixsocketperm', '700');
  } else {
    if (useSocket) {
      args.push('--port', '0', '--unixsocket', socket, '--unixsocketperm', '700');
      target = { path: socket };
    } else {
      const port = await freePort();
      const password = randomBytes(24).toString('base64url');
      writeFileSync(passFile, password, { mode: 0o600 });
      args.push('--port', String(port), '--bind', '127.0.0.1', '--requirepass', password);
      target = { url: `redis://:${password}@127.0.0.1:${port}` };
    }
    first = await spawnServer(bin, args, target, logFile);
    logger.info({ redis: useSocket ? `unix:${socket}` : '127.0.0.1 (tcp, password)', pid: first.pid }, 'started embedded redis');
  }
  // The same arguments again: same data directory and AOF, same socket or port and password.
  const supervisor = new RedisSupervisor(first, {
    start: () => spawnServer(bin, args, target, logFile),
    logger, logFile, ...opts,
  });
  return { target, get pid() { return supervisor.pid; }, state: () => supervisor.state, stop: () => supervisor.stop() };
}

/** Starts redis-server and resolves once it answers; a server that exits or never answers is an error. */
async function spawnServer(bin: string, args: string[], target: RedisTarget, logFile: string): Promise<RunningServer> {
  if ('path' in target) rmSync(target.path, { force: true });
  const child: ChildProcess = spawn(bin, args, { stdio: 'ignore', detached: false });
  let exitedHow: string | undefined;
  const exited = new Promise<string>((resolve) => child.once('exit', (code, signal) => { exitedHow = signal ? `signal ${signal}` : `code ${code}`; resolve(exitedHow); }));
  const deadline = Date.now() + 15_000;
  while (!(await ping(target))) {
    if (exitedHow || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new UserError(`redis-server (${bin}) did not start${exitedHow ? ` (it exited: ${exitedHow})` : ''}.`, `see ${logFile}; or set REDIS_URL to use another server`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { pid: child.pid, exited, kill: (signal) => { if (!exitedHow) child.kill(signal); } };
}

/**
 * A server an earlier hub left running: not our child, so its exit is noticed by polling its PID.
 * Without a PID nothing can be watched or stopped: it is left alone (as before the supervisor), and
 * its exit is not reported at once, which would start a second server on the same socket and
 * append-only file.
 */
function adopted(pid: number | undefined): RunningServer {
  const isAlive = () => { if (!pid) return false; try { process.kill(pid, 0); return true; } catch { return false; } };
  let settle!: (how: string) => void;
  const exited = new Promise<string>((resolve) => {
    settle = resolve;
    if (!pid) return;
    const t = setInterval(() => { if (!isAlive()) { clearInterval(t); resolve('no longer running'); } }, 250);
    t.unref();
  });
  return {
    pid, exited,
    kill: (signal) => {
      if (!pid) return settle('left running: its pid is unknown');
      if (isAlive()) { try { process.kill(pid, signal); } catch { /* gone */ } }
    },
  };
}
