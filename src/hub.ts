import { mkdirSync } from 'node:fs';
import type { Worker } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { createLlmAdmission } from './agent/admission.js';
import { createModel, describeModel } from './agent/llm.js';
import { ToolRegistry } from './agent/tools.js';
import { createAgentToolset } from './agent/codeact.js';
import { SEND_FILE_PROMPT, createSendFileTool } from './agent/send-file.js';
import { openAgentFile } from './channels/attachments.js';
import { DraftFeed, draftWriter } from './channels/drafts.js';
import { startAgentWorker } from './agent/worker.js';
import type { ChannelAdapter } from './channels/contract.js';
import { Inbox } from './channels/inbox.js';
import { startOutbox } from './channels/outbox.js';
import { CHAT_CHANNELS, isEnabled, startChatChannels } from './channels/index.js';
import { APPROVAL_PROMPTS, queueOwnerPrompt, startOwnerPrompts } from './channels/approvals.js';
import { WebChannel, WebFanout } from './channels/web/index.js';
import type { LoadedConfig } from './config/load.js';
import { ConversationStore } from './conversations/store.js';
import { compactDb, openConfiguredDb, pingDb } from './db/client.js';
import { UserError } from './errors.js';
import { loadApiToken, Sessions } from './gateway/auth.js';
import type { RouteAccess } from './gateway/access.js';
import { createServer, type ReadinessCheck } from './gateway/server.js';
import { setLogScrubber, type Logger } from './logger.js';
import { Metrics } from './metrics.js';
import { ChannelQueues, connectCommandRedis, createQueue, createRedis, displayRedis, INBOUND, OUTBOUND, redisOutages, watchRedisErrors, type RedisTarget } from './queues.js';
import { startEmbeddedRedis, type EmbeddedRedis, type EmbeddedRedisOptions } from './redis/embedded.js';
import { isRedisUnavailable, RedisOutages } from './redis/outages.js';
import { startRoutines } from './routines/index.js';
import { registerApprovalApi } from './approvals/api.js';
import { createControlPlane } from './approvals/control-plane.js';
import { guardWith, vaultDetector } from './vault/guard.js';
import { openVaultOn, webhookKeySealer } from './vault/index.js';
import { createVaultEgress, isLeakEvent } from './vault/egress.js';
import { createPolicyEgress } from './sandbox/index.js';

export const ROLES = ['all', 'gateway', 'worker', 'scheduler'] as const;
export type Role = (typeof ROLES)[number];

export interface Hub {
  role: Role;
  /** http://host:port of the hub's HTTP server. */
  url: string;
  /** One-time login link for the web chat (gateway roles). */
  loginUrl?: string;
  metrics: Metrics;
  /** Every HTTP route with the access it declared (src/gateway/access.ts). */
  routes: readonly RouteAccess[];
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
/** Every channel a reply can be queued for (the local web chat and CLI, and the chat platforms). */
const ALL_CHANNELS = ['web', 'cli', ...CHAT_CHANNELS];

export interface HubOptions {
  loaded: LoadedConfig;
  role: Role;
  logger: Logger;
  tools?: ToolRegistry;
  secret?: (name: string) => Promise<string | undefined>;
  /** For tests: hooks into the embedded Redis' supervisor (e.g. hold a restart). */
  embeddedRedis?: Pick<EmbeddedRedisOptions, 'beforeRestart'>;
}

export async function startHub(opts: HubOptions): Promise<Hub> {
  const { loaded, role, logger } = opts;
  const { config, home } = loaded;
  mkdirSync(home, { recursive: true, mode: 0o700 });
  const closers: Array<() => Promise<unknown>> = [];
  let embedded: EmbeddedRedis | undefined;
  // One outage log for every Redis client, queue and worker of this hub (see RedisOutages).
  const outages = redisOutages(logger, new RedisOutages(logger, config.redis.url ? displayRedis({ url: config.redis.url }) : 'embedded', () => embedded?.state() ?? 'up'));
  // Each step is bounded: a client of a Redis that has gone away (BullMQ's Worker.close among them)
  // can wait forever, and a stopping hub must still exit.
  const close = async () => {
    outages.stop();
    const deadline = Date.now() + config.worker.shutdown_ms + 10_000;
    for (const fn of closers.reverse()) {
      let timer: NodeJS.Timeout | undefined;
      const limit = new Promise<'timeout'>((r) => { timer = setTimeout(() => r('timeout'), Math.max(500, deadline - Date.now())); });
      // A client that cannot reach Redis fails to say goodbye to it; that is no news worth a line.
      const outcome = await Promise.race([fn().catch((err) => { if (!isRedisUnavailable(err)) logger.warn({ err: (err as Error).message }, 'error while stopping'); }), limit]);
      clearTimeout(timer);
      if (outcome === 'timeout') logger.warn('a shutdown step did not finish in time; going on without it');
    }
  };

  try {
    let redisTarget: RedisTarget;
    if (config.redis.url) {
      redisTarget = { url: config.redis.url };
    } else if (role === 'all') {
      embedded = await startEmbeddedRedis(home, logger, { ...opts.embeddedRedis, onExit: (reason) => outages.began(reason), onUp: () => outages.recovered() });
      redisTarget = embedded.target;
      closers.push(() => embedded!.stop());
    } else {
      throw new UserError(`--role ${role} needs a Redis shared by all Bulwark processes.`, 'set REDIS_URL=redis://HOST:6379 (the same value for every process)');
    }

    const metrics = new Metrics();
    // Fails fast while Redis is down (requests answer 503 instead of hanging; see FAIL_FAST).
    const redis = outages.track('command', watchRedisErrors(await connectCommandRedis(redisTarget, config.redis.connect_timeout_ms).catch((err: Error) => {
      throw new UserError(`cannot reach Redis at ${displayRedis(redisTarget)}: ${err.message}`, 'check REDIS_URL and that the server is running (`bulwark doctor`)');
    }), 'redis', logger));
    closers.push(async () => redis.disconnect());

    const { db, target: dbTarget } = await openConfiguredDb(config.database.url, home);
    closers.push(() => db.$disconnect());
    // The master key opens the vault (credentials) and the conversations' data keys.
    const { vault, cipher } = await openVaultOn(db, home, { create: true });
    const store = new ConversationStore(db, cipher);
    if (role === 'all' || role === 'worker') {
      // Databases from before the vault: seal their plaintext bodies (idempotent, resumable).
      const sealed = await store.sealPlaintext();
      if (sealed > 0) {
        await compactDb(db, dbTarget.kind);
        logger.info({ messages: sealed }, 'encrypted stored messages that were still in plaintext (and compacted the database so the old text is gone from disk)');
      }
    }

    const inbound = createQueue(INBOUND, redisTarget, logger);
    const outbound = new ChannelQueues(redisTarget, OUTBOUND, logger);
    closers.push(() => inbound.close(), () => outbound.close());
    // The queue's own connection (BullMQ wraps it; status and events pass through to ioredis).
    outages.track('inbound queue', (await inbound.getBackend().client) as unknown as Redis);

    const where = embedded ? 'embedded' : displayRedis(redisTarget);
    const checks: ReadinessCheck[] = [
      { name: 'redis', check: async () => {
        const now = outages.status();
        return now.ok ? { ok: (await redis.ping()) === 'PONG', detail: where } : { ok: false, detail: `${where}: ${now.detail}` };
      } },
      { name: 'database', check: async () => { await pingDb(db); return { ok: true, detail: dbTarget.kind }; } },
    ];

    // The audit log and the approval gateway: capability changes wait for an owner; all is recorded.
    // Requests that wait for a human are DMed to the owners by whichever gateway process runs the chat channels.
    const ownerPrompts = new ChannelQueues(redisTarget, APPROVAL_PROMPTS, logger);
    closers.push(() => ownerPrompts.close());
    // One leak detector for the process (the vault's secrets and the LLM key), rebuilt when the vault changes.
    const hubSecrets = config.llm.api_key ? [{ name: 'llm.api_key', value: config.llm.api_key }] : [];
    const hubDetector = vaultDetector(vault, hubSecrets);
    const detectLeaks = guardWith(hubDetector);
    const control = await createControlPlane({ db, home, config, role, vault, store, outbound, cipher, metrics, logger, leaks: detectLeaks, onPending: (req) => queueOwnerPrompt(ownerPrompts, req.id, CHAT_CHANNELS.filter((name) => isEnabled({ channels: config.channels, home }, name))) });
    closers.push(() => control.close());

    // The sandbox reaches the network only through the vault's egress: handles become values only
    // towards destinations their policy names; smuggled secrets are blocked; echoes are scrubbed.
    const egress = createVaultEgress(createPolicyEgress(), vault, {
      onEvent: (e) => {
        if (isLeakEvent(e)) metrics.leaks.inc({ place: 'egress' });
        const recorded = control.audit.durable({ kind: `egress.${e.kind}`, actor: 'agent:default', subject: e.host, data: { method: e.method, ...(e.status !== undefined ? { status: e.status } : {}), ...(e.bytes !== undefined ? { bytes: e.bytes } : {}), handles: e.secrets, ...(e.reason ? { reason: e.reason } : {}) } });
        if (e.kind !== 'request') logger.warn({ egress: e }, e.kind === 'refused' ? 'egress refused' : e.kind === 'leak_blocked' ? 'egress blocked a secret or credential' : 'scrubbed a secret from a response');
        return recorded;
      },
    });
    // One toolset per process, shared by chat turns and routine runs (one sandbox pool).
    const toolset = role === 'gateway'
      ? { tools: new ToolRegistry(), promptExtras: [], close: async () => undefined }
      : opts.tools ? { tools: opts.tools, promptExtras: [], close: async () => undefined } : await createAgentToolset(config, home, logger, { egress, approvedGrants: control.approvedGrants });
    closers.push(() => toolset.close());
    if (role !== 'gateway') control.offerTool(toolset);
    // Every text the agent posts passes the leak detector. Each place's findings are recorded (names and formats, never values) in the audit log.
    const guardFor = (place: string) => async (text: string) => {
      const g = await detectLeaks(text);
      if (g.findings.length > 0) control.audit.sink({ kind: 'leak.detected', actor: 'system', subject: place, data: { findings: g.findings.map((f) => ({ name: f.secret ?? null, format: f.pattern ?? null, encoding: f.encoding ?? null })) } });
      return g;
    };
    const guard = guardFor('reply');
    // Files the agent sends with a reply: checked by type, name and the leak detector, stored sealed.
    if (role !== 'gateway' && !toolset.tools.get('send_file')) {
      toolset.tools.register(createSendFileTool({
        home, seal: (conversationId, context, b64) => cipher.seal(conversationId, context, b64), guard: guardFor('file'),
        onLeak: (conversationId, findings) => {
          metrics.leaks.inc({ place: 'file' }, findings.length);
          logger.warn({ conversationId, findings }, 'refused a file from the agent: it holds a credential');
        },
      }));
      toolset.promptExtras.push(SEND_FILE_PROMPT);
    }
    // So does every log line (synchronously, with the detector of the vault as last seen; refreshed
    // every few seconds, so a secret added while the hub runs is scrubbed from then on).
    let scrubWith = await hubDetector();
    const refresh = setInterval(() => { hubDetector().then((d) => { scrubWith = d; }, () => undefined); }, 5_000);
    refresh.unref();
    setLogScrubber(logger, (line) => {
      const { redacted, findings } = scrubWith.redact(line);
      if (findings.length > 0) metrics.leaks.inc({ place: 'log' }, findings.length);
      return redacted;
    });
    closers.push(async () => { clearInterval(refresh); });
    // And everything sent to the LLM provider (history, tool results, sandbox output).
    const llmLeaks = guardFor('llm');
    const llmGuard = async (text: string) => {
      const g = await llmLeaks(text);
      if (g.findings.length > 0) {
        metrics.leaks.inc({ place: 'llm' }, g.findings.length);
        logger.warn({ findings: g.findings }, 'redacted a credential from what was about to be sent to the LLM');
      }
      return g;
    };
    // One set of fair model-call slots and one circuit breaker per process, for chat turns and routines.
    const admission = createLlmAdmission(config.llm);
    const routines = await startRoutines({
      admission, scheduler: role === 'all' || role === 'scheduler', loaded, redisTarget, redis, db, conversations: store, outbound, cipher, llmGuard, webhookKeys: webhookKeySealer(vault),
      toolset, guard: guardFor('routine'), metrics, logger,
    });
    closers.push(() => routines.close());
    // Routines the agent asked for are created by the control plane once the owner approved them.
    control.gateway.setApplier('create_routine', routines.applyApproved);

    const workers: Worker[] = [];
    const adapters = new Map<string, ChannelAdapter>();
    let web: Parameters<typeof createServer>[0]['web'];
    let apiToken: string | undefined;
    let sessions: Sessions | undefined;
    let chatRoutes: ((app: FastifyInstance) => void) | undefined;

    if (role === 'all' || role === 'gateway') {
      apiToken = loadApiToken(home, true);
      for (const name of ['web', 'cli'] as const) adapters.set(name, new WebChannel(name, redis));
      const sub = watchRedisErrors(createRedis(redisTarget), 'web subscriber', logger);
      const fanout = new WebFanout(sub);
      await fanout.start();
      closers.push(() => fanout.stop());
      sessions = new Sessions(redis);
      web = {
        inbox: new Inbox(redis, inbound, cipher, control.audit.durable), store, fanout, sessions, metrics, logger, secureCookies: false, audit: control.audit.durable,
        openFile: (conversationId, ref) => openAgentFile(home, cipher, conversationId, ref),
      };
      for (const a of adapters.values()) {
        checks.push({ name: `channel:${a.name}`, check: async () => { const s = a.status(); return { ok: s.state === 'connected', detail: s.detail ?? s.state }; } });
        closers.push(() => a.stop());
      }
      // Telegram, Slack, Discord, WhatsApp; their tokens come from the vault (telegram.token, …).
      const chat = await startChatChannels({ redis, inbox: web.inbox, channels: config.channels, logger, metrics, home, cipher, secret: opts.secret ?? (async (name) => (await vault.get(name))?.value), approvals: control.gateway, audit: control.audit.durable });
      for (const a of chat.adapters) adapters.set(a.name, a);
      checks.push(...chat.checks);
      closers.push(() => chat.stop());
      chatRoutes = chat.registerRoutes;
      // Drafts of long replies while the model writes them, for the adapters that show them.
      if (chat.drafts.size > 0) {
        const draftSub = watchRedisErrors(createRedis(redisTarget), 'draft subscriber', logger);
        const feed = new DraftFeed(draftSub, cipher, chat.drafts, logger);
        await feed.start();
        closers.push(() => feed.stop());
      }
      workers.push(...startOutbox({ redisTarget, adapters, outbound, cipher, metrics, logger, audit: control.audit.durable }));
      workers.push(...startOwnerPrompts({ redisTarget, get: (id) => control.gateway.get(id), prompters: chat.prompters, logger }));
    }

    if (role === 'all' || role === 'worker') {
      const model = createModel(config.llm, llmGuard);
      if (!model) logger.warn('no LLM configured: chat messages get a reply explaining how to configure one');
      workers.push(startAgentWorker({
        redisTarget, redis, inbound, outbound, store, cipher, model, llm: config.llm, admission, tools: toolset.tools,
        promptExtras: toolset.promptExtras, metrics, logger, concurrency: config.worker.concurrency, lockMs: config.worker.lock_ms,
        commands: routines.chatCommand,
        guard,
        drafts: {
          channels: new Set(config.channels.telegram.stream_replies ? ['telegram'] : []),
          writer: (target) => draftWriter({ redis, cipher, detector: hubDetector, target, logger }),
        },
      }));
    }

    // Routine runs (roles scheduler and all) stop with the other workers: in-flight runs finish first.
    workers.push(...routines.workers);

    // Workers first on shutdown: stop taking jobs, let in-flight turns finish (bounded), then the rest.
    // Without Redis a graceful close never ends (a worker's quit waits behind commands it cannot
    // send), so an outage, now or during the wait, ends it: the jobs are retried once Redis is back.
    closers.push(async () => {
      if (!outages.status().ok) {
        logger.warn({ redis: outages.status().detail }, 'Redis is unavailable: in-flight turns are stopped and retried when it is back');
        for (const w of workers) w.cancelAllJobs('shutdown');
        return Promise.all(workers.map((w) => w.close(true)));
      }
      const graceful = Promise.all(workers.map((w) => w.close()));
      const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), config.worker.shutdown_ms).unref());
      const outage = outages.whenUnavailable().then(() => 'outage' as const);
      const outcome = await Promise.race([graceful, timeout, outage]);
      if (outcome === 'timeout' || outcome === 'outage') {
        logger.warn({ waitedMs: config.worker.shutdown_ms }, outcome === 'outage' ? 'Redis became unavailable while stopping: in-flight turns are stopped and retried when it is back' : 'in-flight turns did not finish; they go back to the queue and are retried');
        for (const w of workers) w.cancelAllJobs('shutdown');
        // close(true) now would only return the close already under way; dropping the connections ends it.
        if (outcome === 'outage') await Promise.all(workers.map((w) => w.disconnect().catch(() => undefined)));
        await graceful;
      }
    });

    const queueDepth = async () => {
      for (const [name, q] of [[INBOUND, inbound], ['routines', routines.queue]] as const) {
        const counts = await q.getJobCounts('waiting', 'active', 'delayed', 'failed');
        for (const [state, n] of Object.entries(counts)) metrics.queueDepth.set({ queue: name, state }, n);
      }
      // All channels' outbound queues together, as one "outbound" queue (a channel nobody runs shows up as waiting).
      for (const [state, n] of Object.entries(await outbound.counts(ALL_CHANNELS))) metrics.queueDepth.set({ queue: OUTBOUND, state }, n);
    };

    const server: FastifyInstance = await createServer({
      logger, metrics, checks, live: () => outages.status(), bodyLimit: config.server.body_limit, beforeScrape: queueDepth, ...(web ? { web } : {}),
      // The name the hub listens on is one it answers to (IPs and loopback names always are).
      access: { apiToken, sessions, allowedHosts: [...config.server.allowed_hosts, config.server.host] },
      metricsNeedToken: !isLoopback(config.server.host) && apiToken !== undefined,
      status: async () => ({
        role, llm: describeModel(config.llm), database: dbTarget.kind, redis: embedded ? 'embedded' : displayRedis(redisTarget),
        queues: { inbound: await inbound.getJobCounts(), outbound: await outbound.counts(ALL_CHANNELS) },
        stored: await store.counts(), uptimeSeconds: Math.round(process.uptime()),
      }),
    });
    if (web) await routines.registerRoutes(server);
    if (web) registerApprovalApi(server, { gateway: control.gateway });
    chatRoutes?.(server);
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
      role, url, metrics, routes: server.accessTable, ...(loginUrl ? { loginUrl } : {}),
      close: async () => { if (!closed) { closed = true; await close(); } },
    };
  } catch (err) {
    await close();
    throw err;
  }
}
