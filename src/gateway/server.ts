import Fastify, { type FastifyInstance } from 'fastify';
import cookie from '@fastify/cookie';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { registerWebRoutes, type WebRouteDeps } from '../channels/web/routes.js';
import { installAccessControl, route, type AccessOptions } from './access.js';
import { isRedisUnavailable, RETRY_AFTER_S } from '../redis/outages.js';

/** One dependency /readyz checks: Redis, the database, each enabled channel. */
export interface ReadinessCheck {
  name: string;
  check(): Promise<{ ok: boolean; detail?: string }>;
}

export interface ServerOptions {
  logger: Logger;
  metrics: Metrics;
  checks: ReadinessCheck[];
  /** What /healthz reports, without a round trip (the Redis connection's status). */
  live?: () => { ok: boolean; detail?: string };
  bodyLimit: number;
  /** Refreshes gauges (queue depth) right before a scrape. */
  beforeScrape?: () => Promise<void>;
  /** Present in the gateway role: the web chat and its API. */
  web?: WebRouteDeps;
  /** Extra facts for `bulwark status` (queue counts, model, role). */
  status?: () => Promise<Record<string, unknown>>;
  /** Who may call what (src/gateway/access.ts): the API token, web sessions, allowed Host names. */
  access: AccessOptions;
  /** /metrics requires the API token (the hub listens beyond loopback). */
  metricsNeedToken?: boolean;
}

async function runChecks(checks: ReadinessCheck[]) {
  return Promise.all(checks.map(async (c) => {
    try {
      const r = await Promise.race([c.check(), new Promise<{ ok: false; detail: string }>((res) => setTimeout(() => res({ ok: false, detail: 'timed out after 2s' }), 2000).unref())]);
      return { name: c.name, ...r };
    } catch (err) {
      return { name: c.name, ok: false, detail: (err as Error).message };
    }
  }));
}

/** The hub's HTTP server: health, readiness, metrics, and (gateway role) the web chat. */
export async function createServer(opts: ServerOptions): Promise<FastifyInstance> {
  // forceCloseConnections: SSE streams are long-lived and would otherwise hold shutdown open.
  const app = Fastify({ logger: false, bodyLimit: opts.bodyLimit, trustProxy: false, return503OnClosing: true, forceCloseConnections: true });
  await app.register(cookie);
  // Before any route: every route is owner-only unless it declares otherwise.
  installAccessControl(app, opts.access);
  // The API takes JSON only; Fastify's default text/plain parser would turn a plain-text body into a
  // confusing 400 from validation instead of the 415 the README promises.
  app.removeContentTypeParser('text/plain');

  app.setErrorHandler((err: { statusCode?: number; message: string; code?: string }, req, reply) => {
    // Redis down: the request was not taken (nothing half-written), so the client may simply retry.
    if (!err.statusCode && isRedisUnavailable(err)) {
      opts.metrics.errors.inc({ where: 'redis' });
      return reply.code(503).header('retry-after', String(RETRY_AFTER_S)).send({ error: `Redis is unavailable, so the hub cannot take this request now: retry in ${RETRY_AFTER_S} s (the hub reconnects by itself; \`bulwark status\` shows the state)` });
    }
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500;
    if (status >= 500) {
      opts.metrics.errors.inc({ where: 'http' });
      opts.logger.error({ url: req.url, method: req.method, err: err.message }, 'request failed');
      return reply.code(status).send({ error: 'internal error; the hub logged the details' });
    }
    const message = err.code === 'FST_ERR_CTP_BODY_TOO_LARGE' ? `request body is larger than the limit of ${opts.bodyLimit} bytes (server.body_limit)`
      : err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' ? 'send the body as JSON with Content-Type: application/json'
      : err.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' ? 'the JSON body is empty'
      : /JSON/i.test(err.message) ? `the body is not valid JSON: ${err.message}`
      : err.message;
    return reply.code(status).send({ error: message });
  });
  app.setNotFoundHandler((req, reply) => reply.code(404).send({ error: `no route ${req.method} ${req.url.split('?')[0]}` }));

  app.get('/healthz', route('public'), async (_req, reply) => {
    const redis = opts.live?.() ?? { ok: true };
    return redis.ok ? { ok: true } : reply.code(503).header('retry-after', String(RETRY_AFTER_S)).send({ ok: false, redis: redis.detail });
  });
  app.get('/readyz', route('public'), async (_req, reply) => {
    const checks = await runChecks(opts.checks);
    const ready = checks.every((c) => c.ok);
    return reply.code(ready ? 200 : 503).send({ ready, checks });
  });
  app.get('/metrics', route(opts.metricsNeedToken ? 'token' : 'public'), async (_req, reply) => {
    await opts.beforeScrape?.().catch(() => undefined);
    opts.metrics.httpConnections.set(await new Promise<number>((r) => app.server.getConnections((err, n) => r(err ? 0 : n))));
    return reply.type(opts.metrics.registry.contentType).send(await opts.metrics.registry.metrics());
  });

  if (opts.web) {
    registerWebRoutes(app, opts.web);
    app.get('/api/status', async () => ({ checks: await runChecks(opts.checks), ...(await opts.status?.()) }));
  }
  return app;
}
