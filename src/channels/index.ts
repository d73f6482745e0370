import type { FastifyInstance } from 'fastify';
import type { ApprovalRequest } from '../approvals/types.js';
import type { ReadinessCheck } from '../gateway/server.js';
import { ChatCore, type ChatAdapter, type ChatDeps } from './chat.js';
import type { Draft } from './drafts.js';
import { CHAT_CHANNELS, isEnabled, loadAdapterModule } from './registry.js';
import { registerChannelRoutes } from './routes.js';

export { CHAT_CHANNELS, isEnabled, readOverrides, writeOverride, overridesFile, type AdapterModule } from './registry.js';
export { ChatCore, type ChatAdapter, type ChatDeps, type IncomingChat, type ChatIO } from './chat.js';

/** Starts the chat adapters (Telegram, Slack, Discord, WhatsApp) that are enabled; see registry.ts. */
export interface ChatChannels {
  adapters: ChatAdapter[];
  checks: ReadinessCheck[];
  /** The /api/pairing and /api/channels routes plus adapters' webhook routes. */
  registerRoutes(app: FastifyInstance): void;
  /** For each running channel whose adapter DMs owners: how to send them a pending approval request (throws to be retried). */
  prompters: Map<string, (req: ApprovalRequest) => Promise<void>>;
  /** Adapters that show drafts of replies being written, by channel name. */
  drafts: Map<string, (d: Draft) => Promise<void>>;
  stop(): Promise<void>;
}

/**
 * Starts every enabled chat adapter. An adapter that cannot start (missing token, library error) is
 * still listed: its readiness check fails with the reason, so /readyz and `bulwark status` say why
 * instead of the channel silently missing.
 */
export async function startChatChannels(deps: ChatDeps): Promise<ChatChannels> {
  const adapters: ChatAdapter[] = [];
  const checks: ReadinessCheck[] = [];
  const broken: ChatAdapter[] = [];
  for (const name of CHAT_CHANNELS) {
    if (!isEnabled(deps, name)) continue;
    const core = new ChatCore(name, deps.channels[name], deps);
    if (deps.channels[name].link_previews) {
      deps.logger.warn({ channel: name }, `link previews are on for ${name}: the platform fetches every URL the agent writes, so a tricked model can send the user's data to any host through a link (set link_previews = false to stop it)`);
    }
    try {
      const mod = await loadAdapterModule(name);
      const adapter = await mod.createAdapter(core);
      adapters.push(adapter);
      checks.push({ name: `channel:${name}`, check: async () => { const s = adapter.status(); return { ok: s.state === 'connected', detail: s.detail ?? s.state }; } });
    } catch (err) {
      const detail = core.scrub(`could not start: ${(err as Error).message}`);
      core.state.error(detail);
      checks.push({ name: `channel:${name}`, check: async () => ({ ok: false, detail }) });
      // Listed by /api/channels with its error, but never handed a message to send.
      broken.push({ name, status: () => core.state.status(), send: async () => { throw new Error(detail); }, stop: async () => undefined });
    }
  }
  const drafts = new Map<string, (d: Draft) => Promise<void>>();
  for (const a of adapters) if (a.draft) drafts.set(a.name, (d) => a.draft!(d));
  const prompters = new Map<string, (req: ApprovalRequest) => Promise<void>>();
  for (const a of adapters) if (a.promptOwners) prompters.set(a.name, (req) => a.promptOwners!(req));
  return {
    adapters, checks, drafts, prompters,
    registerRoutes: (app) => {
      registerChannelRoutes(app, { ...deps, running: () => [...adapters, ...broken] });
      for (const a of adapters) a.registerRoutes?.(app);
    },
    stop: async () => { await Promise.all(adapters.map((a) => a.stop().catch(() => undefined))); },
  };
}
