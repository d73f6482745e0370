import type { Logger } from '../logger.js';

export type ServerState = 'up' | 'restarting' | 'down';

/** One running redis-server: its PID, and a promise that settles when it exits. */
export interface RunningServer { pid: number | undefined; exited: Promise<string>; kill(signal: NodeJS.Signals): void }

export interface SupervisorOptions {
  /** Starts the server (same data directory, socket or port, password) and resolves once it answers. */
  start(): Promise<RunningServer>;
  logger: Logger;
  /** Where redis-server writes why it stopped (named in log lines). */
  logFile: string;
  /** Told when the server went away, with why (the hub's outage log, so an outage is one line). */
  onExit?(reason: string): void;
  /** Told when a restarted server answers again. */
  onUp?(): void;
  /** For tests: a restart waits for this, so the outage can be looked at before it ends. */
  beforeRestart?(): Promise<void>;
  /** Restarts allowed within a minute before the supervisor gives up (a server that cannot stay up). */
  maxPerMinute?: number;
}

/**
 * Keeps the embedded redis-server running: when it exits on its own (killed, crashed, OOM), it is
 * started again the same way after a short backoff, so every client reconnects by itself to the
 * same socket or port and finds its data again in the append-only file. A server that keeps dying
 * is given up after `maxPerMinute` restarts and reported `down`, which /healthz shows.
 */
export class RedisSupervisor {
  private current: RunningServer;
  private state_: ServerState = 'up';
  private stopping = false;
  private readonly restarts: number[] = [];
  private wake: (() => void) | undefined;
  private starting: Promise<RunningServer> | undefined;
  private readonly stopped: Promise<void>;
  private markStopped!: () => void;

  constructor(first: RunningServer, private readonly o: SupervisorOptions) {
    this.current = first;
    this.stopped = new Promise((r) => { this.markStopped = r; });
    this.watch(first);
  }

  get state(): ServerState { return this.state_; }
  get pid(): number | undefined { return this.current.pid; }

  /** Stops the server without restarting it. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.markStopped();
    this.wake?.();
    await stopServer(this.current);
    // A restart under way when the hub stops: its server is stopped too, not left behind.
    const late = await this.starting?.catch(() => undefined);
    if (late) await stopServer(late);
  }

  private watch(server: RunningServer): void {
    server.exited.then((how) => {
      if (this.stopping || server !== this.current) return;
      this.state_ = 'restarting';
      const reason = `embedded redis-server (pid ${server.pid ?? '?'}) exited (${how}); restarting it`;
      if (this.o.onExit) this.o.onExit(reason);
      else this.o.logger.warn({ log: this.o.logFile }, reason);
      void this.restart();
    }, () => undefined);
  }

  private async restart(): Promise<void> {
    const limit = this.o.maxPerMinute ?? 5;
    for (let attempt = 1; !this.stopping; attempt++) {
      const now = Date.now();
      while (this.restarts.length > 0 && now - this.restarts[0]! > 60_000) this.restarts.shift();
      if (this.restarts.length >= limit) {
        this.state_ = 'down';
        this.o.logger.error({ log: this.o.logFile, restarts: this.restarts.length }, `embedded redis-server exited ${limit} times within a minute; not restarting it again: see the log, fix the cause, then restart the hub`);
        return;
      }
      // Short at first (a killed server comes back at once), longer if it keeps failing to start.
      await this.sleep(Math.min(5_000, 100 * 2 ** (attempt - 1)));
      await Promise.race([this.o.beforeRestart?.(), this.stopped]);
      if (this.stopping) return;
      this.restarts.push(Date.now());
      try {
        const server = await (this.starting = this.o.start());
        this.starting = undefined;
        if (this.stopping) return;
        this.current = server;
        this.state_ = 'up';
        this.o.logger.info({ pid: server.pid }, 'restarted embedded redis');
        this.watch(server);
        this.o.onUp?.();
        return;
      } catch (err) {
        this.starting = undefined;
        this.o.logger.warn({ err: (err as Error).message, attempt }, 'embedded redis-server did not start again; retrying');
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => { this.wake = undefined; resolve(); }, ms);
      this.wake = () => { clearTimeout(t); this.wake = undefined; resolve(); };
    });
  }
}

async function stopServer(server: RunningServer): Promise<void> {
  server.kill('SIGTERM');
  const timer = setTimeout(() => server.kill('SIGKILL'), 10_000);
  await server.exited;
  clearTimeout(timer);
}
