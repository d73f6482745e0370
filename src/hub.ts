import { mkdirSync } from 'node:fs';
import type { Worker } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import { createModel, describeModel } from './agent/llm.js';
import { ToolRegistry } from './agent/tools.js';
import { createAgentToolset } from './agent/codeact.js';
import { startAgentWorker } from './agent/worker.js';
import type { ChannelAdapter } from './channels/contract.js';
import { Inbox } from './channels/inbox.js';
import { startOutbox } from './channels/outbox.js';
import { WebChannel, WebFanout } from './channels/web/index.js';
import type { LoadedConfig } from './config/load.js';
import { ConversationStore } from './conversations/store.js';
import { openDb, pingDb, resolveDbTarget, type Db } from './db/client.js';
import { UserError } from './errors.js';
import { loadApiToken, Sessions } from './gateway/auth.js';
import { createServer, type ReadinessCheck } from './gateway/server.js';
import type { Logger } from './logger.js';
import { Metrics } from './metrics.js';
import { createQueue, createRedis, displayRedis, INBOUND, OUTBOUND, type RedisTarget } from './queues.js';
import { startEmbeddedRedis, type EmbeddedRedis } from './redis/embedded.js';
import { startRoutines } from './routines/index.js';
import { createReplyGuard } from './vault/guard.js';

export const ROLES = ['all', 'gateway', 'worker', 'scheduler'] as const;
export type Role = (typeof ROLES)[number];

export interface Hub {
  role: Role;
  /** http://host:port of the hub's HTTP server. */
  url: string;
  /** One-time login link for the web chat (gateway roles). */
  loginUrl?: string;
  metrics: Metrics;
  close(): Promise<void>;
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

/**
 * Starts the hub in one role. `all` runs everything in one process (the embedded default);
 * `gateway` (HTTP + channels), `worker` (agent turns) and `scheduler` (routines) run the same code
 * split across processes or machines that share one Redis and one database.
 */
export async function startHub(opts: { loaded: LoadedConfig; role: Role; logger: Logger; tools?: ToolRegistry }): Promise<Hub> {
  const { loaded, role, logger } = opts;
  const { config, home } = loaded;
  mkdirSync(home, { recursive: true, mode: 0o700 });
  const closers: Array<() => Promise<unknown>> = [];
  // Each step is bounded: a client of a Redis that has gone away (BullMQ's Worker.close among them)
  // can wait forever, and a stopping hub must still exit.
  const close = async () => {
    const deadline = Date.now() + config.worker.shutdown_ms + 10_000;
    for (const fn of closers.reverse()) {
      let timer: NodeJS.Timeout | undefined;
      const limit = new Promise<'timeout'>((r) => { timer = setTimeout(() => r('timeout'), Math.max(500, deadline - Date.now())); });
      const outcome = await Promise.race([fn().catch((err) => logger.warn({ err: (err as Error).message }, 'error while stopping')), limit]);
      clearTimeout(timer);
      if (outcome === 'timeout') logger.warn('a shutdown step did not finish in time; going on without it');
    }
  };

  try {
    let embedded: EmbeddedRedis | undefined;
    let redisTarget: RedisTarget;
    if (config.redis.url) {
      redisTarget = { url: config.redis.url };
    } else if (role === 'all') {
      embedded = await startEmbeddedRedis(home, logger);
      redisTarget = embedded.target;
      closers.push(() => embedded!.stop());
    } else {
      throw new UserError(`--role ${role} needs a Redis shared by all Bulwark processes.`, 'set REDIS_URL=redis://HOST:6379 (the same value for every process)');
    }

    const metrics = new Metrics();
    const redis = createRedis(redisTarget);
    redis.on('error', (err) => logger.warn({ err: err.message }, 'redis connection error'));
    closers.push(async () => redis.disconnect());
    await redis.ping().catch((err: Error) => {
      throw new UserError(`cannot reach Redis at ${displayRedis(redisTarget)}: ${err.message}`, 'check REDIS_URL and that the server is running (`bulwark doctor`)');
    });

    const dbTarget = resolveDbTarget(config.database.url, home);
    let db: Db;
    try {
      db = await openDb(dbTarget);
    } catch (err) {
      throw new UserError(`cannot open the database ${dbTarget.display}: ${(err as Error).message}`, dbTarget.kind === 'postgres' ? 'check DATABASE_URL and that PostgreSQL accepts connections (`bulwark doctor`)' : `check that ${home} is writable`);
    }
    closers.push(() => db.$disconnect());
    const store = new ConversationStore(db);

    const inbound = createQueue(INBOUND, redisTarget);
    const outbound = createQueue(OUTBOUND, redisTarget);
    closers.push(() => inbound.close(), () => outbound.close());

    const checks: ReadinessCheck[] = [
      { name: 'redis', check: async () => ({ ok: (await redis.ping()) === 'PONG', detail: embedded ? 'embedded' : displayRedis(redisTarget) }) },
      { name: 'database', check: async () => { await pingDb(db); return { ok: true, detail: dbTarget.kind }; } },
    ];

    // One toolset per process, shared by chat turns and routine runs (one sandbox pool).
    const toolset = role === 'gateway'
      ? { tools: new ToolRegistry(), promptExtras: [], close: async () => undefined }
      : opts.tools ? { tools: opts.tools, promptExtras: [], close: async () => undefined } : await createAgentToolset(config, home, logger);
    closers.push(() => toolset.close());
    // Every text the agent posts passes the leak detector (today's secret: the LLM key).
    const guard = createReplyGuard(config.llm.api_key ? [{ name: 'llm.api_key', value: config.llm.api_key }] : []);
    const routines = await startRoutines({
      scheduler: role === 'all' || role === 'scheduler', loaded, redisTarget, redis, db, conversations: store, outbound,
      toolset, guard, metrics, logger,
    });
    closers.push(() => routines.close());

    const workers: Worker[] = [];
    const adapters = new Map<string, ChannelAdapter>();
    let web: Parameters<typeof createServer>[0]['web'];
    let apiToken: string | undefined;
    let sessions: Sessions | undefined;

    if (role === 'all' || role === 'gateway') {
      apiToken = loadApiToken(home, true);
      for (const name of ['web', 'cli'] as const) adapters.set(name, new WebChannel(name, redis));
      const sub = createRedis(redisTarget);
      sub.on('error', (err) => logger.warn({ err: err.message }, 'redis subscriber connection error'));
      const fanout = new WebFanout(sub);
      await fanout.start();
      closers.push(() => fanout.stop());
      sessions = new Sessions(redis);
      web = { inbox: new Inbox(redis, inbound), store, fanout, sessions, apiToken, metrics, logger, secureCookies: false };
      for (const a of adapters.values()) {
        checks.push({ name: `channel:${a.name}`, check: async () => { const s = a.status(); return { ok: s.state === 'connected', detail: s.detail ?? s.state }; } });
        closers.push(() => a.stop());
      }
      workers.push(startOutbox({ redisTarget, adapters, metrics, logger }));
    }

    if (role === 'all' || role === 'worker') {
      const model = createModel(config.llm);
      if (!model) logger.warn('no LLM configured: chat messages get a reply explaining how to configure one');
      workers.push(startAgentWorker({
        redisTarget, redis, inbound, outbound, store, model, llm: config.llm, tools: toolset.tools,
        promptExtras: toolset.promptExtras, metrics, logger, concurrency: config.worker.concurrency, lockMs: config.worker.lock_ms,
        commands: routines.chatCommand,
        guard,
      }));
    }

    // Routine runs (roles scheduler and all) stop with the other workers: in-flight runs finish first.
    workers.push(...routines.workers);

    // Workers first on shutdown: stop taking jobs, let in-flight turns finish (bounded), then the rest.
    closers.push(async () => {
      const graceful = Promise.all(workers.map((w) => w.close()));
      const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), config.worker.shutdown_ms).unref());
      if ((await Promise.race([graceful, timeout])) === 'timeout') {
        logger.warn({ waitedMs: config.worker.shutdown_ms }, 'in-flight turns did not finish; they go back to the queue and are retried');
        for (const w of workers) w.cancelAllJobs('shutdown');
        await Promise.all(workers.map((w) => w.close(true)));
      }
    });

    const queueDepth = async () => {
      for (const [name, q] of [[INBOUND, inbound], [OUTBOUND, outbound], ['routines', routines.queue]] as const) {
        const counts = await q.getJobCounts('waiting', 'active', 'delayed', 'failed');
        for (const [state, n] of Object.entries(counts)) metrics.queueDepth.set({ queue: name, state }, n);
      }
    };

    const server: FastifyInstance = await createServer({
      logger, metrics, checks, bodyLimit: config.server.body_limit, beforeScrape: queueDepth, ...(web ? { web } : {}),
      metricsToken: isLoopback(config.server.host) ? undefined : apiToken,
      status: async () => ({
        role, llm: describeModel(config.llm), database: dbTarget.kind, redis: embedded ? 'embedded' : displayRedis(redisTarget),
        queues: { inbound: await inbound.getJobCounts(), outbound: await outbound.getJobCounts() },
        stored: await store.counts(), uptimeSeconds: Math.round(process.uptime()),
      }),
    });
    if (web) await routines.registerRoutes(server, { apiToken: apiToken! });
    // The HTTP server stops first (no new messages), everything else after it.
    const address = await server.listen({ host: config.server.host, port: config.server.port }).catch((err: NodeJS.ErrnoException) => {
      throw new UserError(`cannot listen on ${config.server.host}:${config.server.port}: ${err.code ?? err.message}`, err.code === 'EADDRINUSE' ? 'another program (or another hub) uses that port: stop it or set BULWARK_PORT' : 'check server.host / BULWARK_HOST');
    });
    closers.push(() => server.close());
    if (!isLoopback(config.server.host)) logger.warn({ host: config.server.host }, 'the hub listens beyond loopback: put it behind TLS and keep the API token secret');

    const port = (server.server.address() as { port: number }).port;
    const url = `http://${config.server.host.includes(':') ? `[${config.server.host}]` : config.server.host}:${port}`;
    const loginUrl = sessions ? `${url}/login?code=${await sessions.createLoginCode()}` : undefined;
    logger.info({ role, url: address.replace(/\/\/[^/]*/, `//${config.server.host}:${port}`), llm: describeModel(config.llm), database: dbTarget.display, redis: embedded ? 'embedded' : displayRedis(redisTarget) }, 'hub started');

    let closed = false;
    return {
      role, url, metrics, ...(loginUrl ? { loginUrl } : {}),
      close: async () => { if (!closed) { closed = true; await close(); } },
    };
  } catch (err) {
    await close();
    throw err;
  }
}
