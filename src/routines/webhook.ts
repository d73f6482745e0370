import { createHash, randomBytes } from 'node:crypto';
import type { Queue } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { route } from '../gateway/access.js';
import { LoginThrottle } from '../gateway/auth.js';
import type { Logger } from '../logger.js';
import { pushEvent } from './heartbeat.js';
import { enqueueRun, runIdOf } from './queue.js';
import { MAX_SKEW_S, SIGNATURE_HEADER, signatureProblem, TIMESTAMP_HEADER } from './signature.js';
import type { RoutineStore } from './store.js';

/*
 * POST /hooks/routines/:id — the webhook trigger. It is outside /api/ on purpose: the caller is
 * another system holding the routine's secret, not the owner's session or API token. What it
 * checks, in order: body size (413, before anything is read into memory past the cap), signature
 * and timestamp (401, the same answer for an unknown routine; 429 instead once one address has failed
 * too often), replay (409), then it queues a run (202). Access 'signed': no owner credentials, no
 * Host check (src/gateway/access.ts). The body reaches the model only as untrusted data (prompt.ts).
 */

export interface WebhookDeps {
  store: RoutineStore;
  queue: Queue;
  redis: Redis;
  maxBytes: number;
  logger: Logger;
}

const params = z.strictObject({ id: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/) });
const seenKey = (signature: string) => `bulwark:routine:hook-seen:${createHash('sha256').update(signature).digest('hex')}`;
const header = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v);

export async function registerWebhookRoute(app: FastifyInstance, deps: WebhookDeps): Promise<void> {
  const throttle = new LoginThrottle(20, 60_000);
  // A secret nobody has: unknown routines are checked against it, so they fail like a bad signature.
  const decoy = randomBytes(32).toString('hex');

  await app.register(async (scope) => {
    // The signature covers the exact bytes sent, so the body is kept raw, whatever its type.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: deps.maxBytes }, (_req, body, done) => done(null, body));
    scope.setErrorHandler((err: { statusCode?: number; code?: string; message: string }, req, reply) => {
      if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return reply.code(413).send({ error: `webhook body is larger than ${deps.maxBytes} bytes (routines.webhook_max_bytes): send less, or raise the limit` });
      const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
      if (status === 500) deps.logger.error({ url: req.url, err: err.message }, 'webhook failed');
      return reply.code(status).send({ error: status === 500 ? 'internal error; the hub logged the details' : err.message });
    });

    scope.post('/hooks/routines/:id', { bodyLimit: deps.maxBytes, ...route('signed') }, async (req, reply) => {
      // The signature is checked before the throttle: a validly signed call always goes through, so
      // bad signatures from anyone cannot lock the real sender out; only the failing source gets 429.
      const p = params.safeParse(req.params);
      const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      const secret = p.success ? await deps.store.webhookSecret(p.data.id) : undefined;
      const problem = signatureProblem(secret ?? decoy, header(req.headers[TIMESTAMP_HEADER]), header(req.headers[SIGNATURE_HEADER]), body);
      if (problem || !secret || !p.success) {
        if (throttle.blocked(req.ip)) return reply.code(429).send({ error: 'too many rejected webhook calls from this address; wait a minute' });
        throttle.fail(req.ip);
        deps.logger.warn({ ip: req.ip, routineId: p.success ? p.data.id : undefined }, 'webhook refused: bad signature');
        return reply.code(401).send({ error: `invalid webhook signature: ${problem ?? 'the signature does not match'}` });
      }
      const signature = header(req.headers[SIGNATURE_HEADER])!;
      if ((await deps.redis.set(seenKey(signature), '1', 'EX', MAX_SKEW_S * 2, 'NX')) === null) {
        return reply.code(409).send({ error: 'this exact request was already accepted (replay refused): sign each delivery with its own timestamp' });
      }
      const routine = await deps.store.get(p.data.id);
      if (!routine) return reply.code(401).send({ error: 'invalid webhook signature: the signature does not match' });
      if (!routine.enabled) return reply.code(409).send({ error: `routine "${routine.name}" is disabled: enable it with \`bulwark routine edit ${routine.name} --enable\`` });
      const text = body.toString('utf8');
      if (routine.kind === 'heartbeat') {
        await pushEvent(deps.redis, routine.id, text);
        return reply.code(202).send({ accepted: 'event', note: 'the next heartbeat looks at it' });
      }
      if (routine.trigger.type !== 'webhook') return reply.code(409).send({ error: `routine "${routine.name}" is not a webhook routine (its trigger is ${routine.trigger.type})` });
      const runId = await enqueueRun(deps.queue, routine.id, 'webhook', text);
      return reply.code(202).send({ accepted: 'run', runId: runIdOf(runId) });
    });
  });
}
