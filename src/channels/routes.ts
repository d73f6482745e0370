import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { badRequest } from './web/routes.js';
import { ChatCore, type ChatAdapter, type ChatDeps } from './chat.js';
import { CHAT_CHANNELS, isEnabled, loadAdapterModule, readOverrides } from './registry.js';
import { codeSchema, PairingStore } from './pairing.js';

/*
 * Hub API for pairing and channel status. Under /api/, so the web routes' hook already demands the
 * API token (CLI) or a session cookie from our own page (web chat) — same as every other /api route.
 */

const codeBody = z.strictObject({ code: codeSchema });
const channelName = z.enum(CHAT_CHANNELS);

export function registerChannelRoutes(app: FastifyInstance, deps: ChatDeps & { running: () => ChatAdapter[] }): void {
  const pairing = new PairingStore(deps.redis);

  app.get('/api/pairing', async (req, reply) => {
    const q = z.strictObject({ channel: channelName.optional() }).safeParse(req.query);
    if (!q.success) return badRequest(reply, q.error.issues);
    return { pending: await pairing.list(q.data.channel) };
  });

  for (const action of ['approve', 'deny'] as const) {
    app.post(`/api/pairing/${action}`, async (req, reply) => {
      const body = codeBody.safeParse(req.body);
      if (!body.success) return badRequest(reply, body.error.issues);
      const p = action === 'approve' ? await pairing.approve(body.data.code) : await pairing.deny(body.data.code);
      if (!p) return reply.code(404).send({ error: `no pending pairing with code ${body.data.code}: it may have expired (codes live 1 hour), been used already, or be mistyped — run \`bulwark pairing list\`` });
      deps.logger.info({ channel: p.channel, senderId: p.senderId, action }, `pairing ${action === 'approve' ? 'approved' : 'denied'}`);
      await deps.audit?.({ kind: action === 'approve' ? 'pairing.approved' : 'pairing.denied', actor: 'owner', subject: `${p.channel}:${p.senderId}`, data: { channel: p.channel, senderId: p.senderId } });
      return { [action === 'approve' ? 'approved' : 'denied']: { channel: p.channel, senderId: p.senderId, senderName: p.senderName ?? null } };
    });
  }

  app.get('/api/pairing/approved', async (req, reply) => {
    const q = z.strictObject({ channel: channelName }).safeParse(req.query);
    if (!q.success) return badRequest(reply, q.error.issues);
    return { channel: q.data.channel, senders: await pairing.approved(q.data.channel) };
  });

  app.post('/api/pairing/revoke', async (req, reply) => {
    const body = z.strictObject({ channel: channelName, senderId: z.string().min(1).max(128) }).safeParse(req.body);
    if (!body.success) return badRequest(reply, body.error.issues);
    const revoked = await pairing.revoke(body.data.channel, body.data.senderId);
    if (revoked) {
      deps.logger.info({ channel: body.data.channel, senderId: body.data.senderId }, 'pairing approval revoked');
      await deps.audit?.({ kind: 'pairing.revoked', actor: 'owner', subject: `${body.data.channel}:${body.data.senderId}`, data: { channel: body.data.channel, senderId: body.data.senderId } });
    }
    return { revoked };
  });

  app.get('/api/channels', async () => {
    const overrides = readOverrides(deps.home);
    const running = new Map(deps.running().map((a) => [a.name, a]));
    return {
      channels: CHAT_CHANNELS.map((name) => {
        const a = running.get(name);
        return {
          name, enabled: isEnabled(deps, name), configured: deps.channels[name].enabled, override: overrides[name] ?? null,
          status: a ? a.status() : { name, state: 'disconnected', detail: isEnabled(deps, name) ? 'enabled, but not running: restart the hub' : 'disabled' },
        };
      }),
    };
  });

  app.post('/api/channels/:name/test', async (req, reply) => {
    const p = z.strictObject({ name: channelName }).safeParse(req.params);
    if (!p.success) return badRequest(reply, p.error.issues);
    const core = new ChatCore(p.data.name, deps.channels[p.data.name], deps);
    let mod;
    try { mod = await loadAdapterModule(p.data.name); } catch (err) { return { ok: false, detail: `the ${p.data.name} adapter is not available: ${(err as Error).message}` }; }
    if (!mod.probe) return { ok: false, detail: `the ${p.data.name} adapter has no connection test` };
    try {
      return await mod.probe(core);
    } catch (err) {
      return { ok: false, detail: core.scrub((err as Error).message) };
    }
  });
}
