import type { Queue } from 'bullmq';
import type { Logger } from '../logger.js';
import type { Db } from '../db/client.js';
import { draftFromOptions, type DraftDefaults, type RoutineOptions } from './draft.js';
import { DEFAULT_OWNER, formatTarget, type Target } from './spec.js';
import type { RoutineStore } from './store.js';
import { syncSchedules } from './sync.js';

/*
 * Routines the agent asked for (request_capability, kind create_routine) are created here, by the
 * control plane, once the owner approved the exact change: name, trigger and instructions as shown
 * in the request. The routine speaks into the conversation whose agent asked for it.
 */

/** What the owner approved: `{ name, trigger, instructions }` (see src/approvals/types.ts). */
export interface ApprovedRoutine { name: string; trigger: string; instructions: string }

/**
 * The agent writes the trigger the way the CLI's options read: "cron 30 8 * * 1-5 Europe/Berlin",
 * "every 30m", "at 2026-12-01 09:00 Europe/Berlin" (the time zone is optional when
 * routines.timezone is set). Anything else fails the request with a message that says so.
 */
export function triggerOptions(trigger: string): Pick<RoutineOptions, 'cron' | 'every' | 'at' | 'tz'> {
  const t = trigger.trim().replace(/\s+/g, ' ');
  const zone = /^(?:[A-Za-z_]+(?:\/[A-Za-z0-9_+-]+)+|UTC)$/;
  const cron = /^cron ((?:\S+ ){4}\S+)(?: (\S+))?$/.exec(t);
  if (cron) return { cron: cron[1]!, ...(cron[2] ? { tz: cron[2] } : {}) };
  const every = /^every (\S+)$/.exec(t);
  if (every) return { every: every[1]! };
  const at = /^at (.+?)(?: (\S+))?$/.exec(t);
  if (at) return at[2] && zone.test(at[2]) ? { at: at[1]!, tz: at[2] } : { at: at[2] ? `${at[1]} ${at[2]}` : at[1]! };
  throw new Error(`trigger "${trigger.slice(0, 100)}" is not understood: write "cron MIN HOUR DOM MON DOW [Zone/City]", "every 30m" or "at YYYY-MM-DD HH:MM [Zone/City]"`);
}

export function routineApplier(deps: { db: Db; store: RoutineStore; queue: Queue; defaults: DraftDefaults; logger: Logger }) {
  return async (req: { diff: Record<string, unknown>; requester: { conversationId?: string | undefined } }): Promise<void> => {
    const r = req.diff as unknown as ApprovedRoutine;
    const conversationId = req.requester.conversationId;
    if (!conversationId) throw new Error('a routine needs the conversation it speaks into, and this request came from none');
    const conv = await deps.db.conversation.findUnique({ where: { id: conversationId }, select: { channel: true, accountId: true, chatId: true } });
    if (!conv) throw new Error(`the requesting conversation ${conversationId} no longer exists`);
    const target: Target = conv;
    const draft = draftFromOptions(r.name, { ...triggerOptions(r.trigger), prompt: r.instructions, to: formatTarget(target) }, undefined, deps.defaults);
    await deps.store.create(draft, { owner: DEFAULT_OWNER });
    await syncSchedules(deps.store, deps.queue, deps.logger);
  };
}
