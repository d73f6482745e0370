import { parse as parseQuery } from 'node:querystring';
import { verifySlackRequest, type App, type Receiver } from '@slack/bolt';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { route } from '../../gateway/access.js';
import type { Logger } from '../../logger.js';

/*
 * HTTP mode: Slack posts events and slash commands to a route on the hub's own server (loopback by
 * default; put a TLS reverse proxy in front for Slack to reach it). Every request must carry a valid
 * v0 signature made with the signing secret over `v0:TIMESTAMP:RAW_BODY`, within 5 minutes (either
 * way) of our clock; anything else gets 401 before a byte of it is parsed. The response waits until
 * the message is in Redis (or is 500 when it could not be taken, so Slack retries).
 */

const MAX_SKEW_S = 5 * 60;
const BODY_LIMIT = 1024 * 1024;

const headersSchema = z.object({
  'x-slack-signature': z.string().regex(/^v0=[0-9a-f]{64}$/),
  'x-slack-request-timestamp': z.string().regex(/^\d{1,12}$/).transform(Number),
});

/** What Bolt is handed: an event callback with an event, a slash command, or an interaction payload. */
const knownShape = z.union([
  z.object({ type: z.literal('event_callback'), event: z.object({ type: z.string() }).passthrough() }).passthrough(),
  z.object({ command: z.string(), user_id: z.string(), channel_id: z.string() }).passthrough(),
  z.object({ type: z.string(), user: z.object({ id: z.string() }).passthrough() }).passthrough(),
]);

/** Bolt's App needs a receiver; in HTTP mode the hub's route is the receiver, so this one is inert. */
export class HubRouteReceiver implements Receiver {
  init(_app: App): void {}
  async start(): Promise<void> {}
  async stop(): Promise<void> {}
}

export interface HttpRouteOptions {
  path: string;
  signingSecret: string;
  /** The Bolt app once auth.test has answered; until then events get 503 (Slack retries them). */
  app: () => App | undefined;
  logger: Logger;
}

function parseBody(raw: string, contentType: string | undefined): Record<string, unknown> {
  if (contentType?.startsWith('application/x-www-form-urlencoded')) {
    const q = parseQuery(raw);
    if (typeof q.payload === 'string') return JSON.parse(q.payload) as Record<string, unknown>;
    return Object.fromEntries(Object.entries(q).map(([k, v]) => [k, Array.isArray(v) ? v[0] : v]));
  }
  const parsed: unknown = JSON.parse(raw);
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('the body is not a JSON object');
  return parsed as Record<string, unknown>;
}

export function registerSlackRoute(server: FastifyInstance, o: HttpRouteOptions): void {
  const { logger } = o;
  // Its own scope: the raw body is needed for the signature, and the hub's JSON parser stays as is.
  void server.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'string', bodyLimit: BODY_LIMIT }, (_req, body, done) => done(null, body));
    scope.post(o.path, route('signed'), async (req: FastifyRequest, reply: FastifyReply) => {
      const raw = typeof req.body === 'string' ? req.body : '';
      const h = headersSchema.safeParse(req.headers);
      const now = Math.floor(Date.now() / 1000);
      try {
        if (!h.success) throw new Error('missing or malformed X-Slack-Signature / X-Slack-Request-Timestamp');
        if (Math.abs(now - h.data['x-slack-request-timestamp']) > MAX_SKEW_S) throw new Error('request timestamp is more than 5 minutes away from our clock');
        verifySlackRequest({ signingSecret: o.signingSecret, body: raw, headers: h.data });
      } catch (err) {
        logger.warn({ ip: req.ip, problem: (err as Error).message }, 'rejected a Slack request with a bad signature');
        return reply.code(401).send({ error: 'invalid Slack signature' });
      }

      let body: Record<string, unknown>;
      try {
        body = parseBody(raw, req.headers['content-type']);
      } catch (err) {
        logger.warn({ problem: (err as Error).message }, 'rejected a signed Slack request with a malformed body');
        return reply.code(400).send({ error: 'malformed body' });
      }
      if (body.ssl_check === '1') return reply.code(200).send();
      if (body.type === 'url_verification') return reply.code(200).send({ challenge: typeof body.challenge === 'string' ? body.challenge : '' });

      if (!knownShape.safeParse(body).success) {
        logger.warn('rejected a signed Slack request that is neither an event, a command nor an interaction');
        return reply.code(400).send({ error: 'malformed body' });
      }
      const app = o.app();
      if (!app) return reply.code(503).send({ error: 'Slack channel is still starting' });
      const retry = Number(req.headers['x-slack-retry-num']);
      let response: unknown;
      try {
        await app.processEvent({
          body,
          ack: async (r?: unknown) => { response ??= r ?? ''; },
          ...(Number.isInteger(retry) ? { retryNum: retry, retryReason: String(req.headers['x-slack-retry-reason'] ?? '') } : {}),
          customProperties: {},
        });
      } catch (err) {
        logger.warn({ err: (err as Error).message }, 'could not take a Slack event; answering 500 so Slack retries it');
        return reply.code(500).send({ error: 'could not take the event; retry' });
      }
      if (response === undefined || response === '') return reply.code(200).send();
      return typeof response === 'string' ? reply.code(200).type('text/plain').send(response) : reply.code(200).send(response);
    });
  });
}
