import type { Queue, Worker } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import type { AgentToolset } from '../agent/codeact.js';
import type { LlmAdmission } from '../agent/admission.js';
import { createModel, type ContextGuard } from '../agent/llm.js';
import type { LoadedConfig } from '../config/load.js';
import type { TextCipher } from '../conversations/cipher.js';
import type { ConversationStore } from '../conversations/store.js';
import type { Db } from '../db/client.js';
import { UserError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { createQueue, type OutboundQueues, type RedisTarget } from '../queues.js';
import { registerRoutineApi } from './api.js';
import { routineCommands, type ChatCommand } from './commands.js';
import { syncHeartbeat } from './heartbeat.js';
import { ROUTINES } from './queue.js';
import { DEFAULT_OWNER } from './spec.js';
import { RoutineStore, type WebhookKeySealer } from './store.js';
import { syncSchedules } from './sync.js';
import { routineApplier } from './approved.js';
import { registerWebhookRoute } from './webhook.js';
import { startRoutineWorker } from './worker.js';

/*
 * What the hub wires in, per role: every role gets the "routines" queue (the worker role answers
 * `/routines run`, the gateway takes webhooks and CLI requests); the scheduler role (and `all`) also
 * keeps the schedules in Redis in line with the database and runs the routines.
 */

export interface RoutinesDeps {
  /** Run routines here (roles `scheduler` and `all`). */
  scheduler: boolean;
  /** The process's fair model-call slots and circuit breaker, shared with chat turns. */
  admission?: LlmAdmission;
  loaded: LoadedConfig;
  redisTarget: RedisTarget;
  redis: Redis;
  db: Db;
  conversations: ConversationStore;
  outbound: OutboundQueues;
  cipher: TextCipher;
  /** Seals webhook keys at rest (the vault). */
  webhookKeys: WebhookKeySealer;
  /** Tools for routine turns: the agent's own toolset (one per process, shared with chat turns). */
  toolset: Pick<AgentToolset, 'tools' | 'promptExtras'>;
  /** The leak guard for what routines post (the same one chat replies pass). */
  guard?: ((text: string) => Promise<{ text: string; findings: unknown[] }>) | undefined;
  /** The leak guard on everything sent to the LLM provider. */
  llmGuard?: ContextGuard | undefined;
  metrics: Metrics;
  logger: Logger;
}

export interface Routines {
  /** Closed with the hub's other workers (in-flight runs finish first). */
  workers: Worker[];
  /** The routines queue (for queue-depth metrics). */
  queue: Queue;
  /** `/routines` in chat, for the agent worker. */
  chatCommand: ChatCommand;
  /** Creates a routine the owner approved (an approval gateway applier for create_routine). */
  applyApproved: ReturnType<typeof routineApplier>;
  /** The webhook route and the CLI's API (gateway roles only). */
  registerRoutes(app: FastifyInstance): Promise<void>;
  close(): Promise<void>;
}

export async function startRoutines(deps: RoutinesDeps): Promise<Routines> {
  const { config, home } = deps.loaded;
  const { logger } = deps;
  const owner = DEFAULT_OWNER;
  const queue = createQueue(ROUTINES, deps.redisTarget, logger);
  const store = new RoutineStore(deps.db, deps.webhookKeys);
  const workers: Worker[] = [];
  let timer: NodeJS.Timeout | undefined;

  if (deps.scheduler) {
    const sealed = await store.sealPlaintextKeys();
    if (sealed > 0) logger.info({ routines: sealed }, 'encrypted webhook keys that were still in plaintext');
    try {
      await syncHeartbeat(store, config, home, owner);
    } catch (err) {
      await queue.close();
      throw new UserError(`the heartbeat cannot start: ${(err as Error).message}`, 'fix the [heartbeat] settings in bulwark.toml (or the BULWARK_HEARTBEAT_* variables)');
    }
    await syncSchedules(store, queue, logger);
    const { toolset } = deps;
    let syncing = false;
    timer = setInterval(() => {
      if (syncing) return;
      syncing = true;
      syncSchedules(store, queue, logger)
        .catch((err: Error) => logger.warn({ err: err.message }, 'routine schedule sync failed; retrying later'))
        .finally(() => { syncing = false; });
    }, config.routines.sync_seconds * 1000);
    timer.unref();
    workers.push(startRoutineWorker({
      redisTarget: deps.redisTarget, redis: deps.redis, queue, store, conversations: deps.conversations, outbound: deps.outbound, cipher: deps.cipher,
      model: createModel(config.llm, deps.llmGuard), ...(deps.admission ? { admission: deps.admission } : {}), tools: toolset.tools, promptExtras: toolset.promptExtras, config, home, metrics: deps.metrics, logger,
      concurrency: config.routines.concurrency, lockMs: config.worker.lock_ms, guard: deps.guard,
    }));
    logger.info({ routines: (await store.list()).filter((r) => r.enabled).length }, 'scheduler: routines running');
  }

  return {
    workers,
    queue,
    chatCommand: routineCommands({ store, queue, owner }),
    applyApproved: routineApplier({ db: deps.db, store, queue, logger, defaults: { timezone: config.routines.timezone, maxTokensPerRun: config.routines.max_tokens_per_run, maxTokensPerDay: config.routines.max_tokens_per_day } }),
    registerRoutes: async (app) => {
      registerRoutineApi(app, { store, queue, owner, logger });
      await registerWebhookRoute(app, { store, queue, redis: deps.redis, maxBytes: config.routines.webhook_max_bytes, logger });
    },
    close: async () => {
      if (timer) clearInterval(timer);
      await queue.close();
    },
  };
}
