import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import type { Redis } from 'ioredis';
import type { Config } from '../config/schema.js';
import { draftSchema, firstProblem, HEARTBEAT_NAME, parseTarget, type Draft, type Routine } from './spec.js';
import type { RoutineStore } from './store.js';

/*
 * The heartbeat: one built-in routine per owner, configured in [heartbeat] (off until enabled). Every
 * `every_minutes` within active hours the agent reviews the owner's checklist and returns a verdict;
 * the owner hears from it only when the verdict says notify. Its inputs are the checklist, messages
 * people sent, and webhook events posted to it; with none of them new since the last answered run,
 * the run is skipped before any model call (the token guard).
 */

const TEMPLATE = `# Heartbeat checklist

<!--
Bulwark's heartbeat reads this file every few minutes (heartbeat.every_minutes) within active hours
and tells you only when something needs your attention. Write one item per line, for example:

- If I mentioned a deadline for today in the chat and have not said it is done, remind me.
- If a webhook event reports a failed backup, tell me which one.

While this file holds only comments, the heartbeat stays silent and costs nothing.
-->
`;

export function checklistPath(config: Config, home: string): string {
  const p = config.heartbeat.checklist ?? 'HEARTBEAT.md';
  return isAbsolute(p) ? p : resolve(home, p);
}

/** The routine row the configuration describes. Throws with the key to fix when it is unusable. */
export function heartbeatDraft(config: Config, home: string): Draft {
  const hb = config.heartbeat;
  let target;
  try { target = parseTarget(hb.to ?? ''); } catch (err) { throw new Error(`heartbeat.to: ${(err as Error).message}`); }
  const parsed = draftSchema.safeParse({
    name: HEARTBEAT_NAME, target, trigger: { type: 'interval', everySeconds: hb.every_minutes * 60 },
    instructions: `Review the checklist ${checklistPath(config, home)}`, enabled: hb.enabled,
    ...(config.routines.timezone ? { timezone: config.routines.timezone } : {}),
    ...(hb.active_hours !== 'always' ? { activeHours: hb.active_hours } : {}),
    maxTokensPerRun: hb.max_tokens_per_run, maxTokensPerDay: hb.daily_token_cap,
    // A late heartbeat adds nothing the next one will not say.
    missedRuns: 'skip',
  });
  if (!parsed.success) throw new Error(`[heartbeat] settings: ${firstProblem(parsed.error)}`);
  return parsed.data;
}

/**
 * Brings the heartbeat row in line with the configuration (scheduler start). When it is enabled and
 * the checklist does not exist yet, a commented template is written for the owner to fill in.
 */
export async function syncHeartbeat(store: RoutineStore, config: Config, home: string, owner: string): Promise<Routine | undefined> {
  const existing = await store.get(`hb_${owner}`);
  if (!config.heartbeat.enabled) {
    if (existing?.enabled) await store.setEnabled(existing.id, false);
    return undefined;
  }
  const file = checklistPath(config, home);
  if (!existsSync(file)) writeFileSync(file, TEMPLATE, { mode: 0o600, flag: 'wx' });
  return store.upsertHeartbeat(owner, heartbeatDraft(config, home));
}

/** The checklist's text without comments, and a hash that changes when the owner edits it. */
export function readChecklist(file: string): { text: string; hash: string } {
  let raw = '';
  try { raw = readFileSync(file, 'utf8'); } catch { /* a missing checklist is an empty one */ }
  const text = raw.replace(/<!--[\s\S]*?-->/g, '').replace(/^#.*$/gm, '').trim();
  return { text, hash: createHash('sha256').update(raw).digest('hex').slice(0, 16) };
}

/*
 * Webhook events for the heartbeat wait in a Redis list until a heartbeat run has looked at them.
 * At most MAX_EVENTS are kept (oldest dropped), for a week.
 */
const eventsKey = (routineId: string) => `bulwark:routine:events:${routineId}`;
const MAX_EVENTS = 50;

export async function pushEvent(redis: Redis, routineId: string, payload: string): Promise<void> {
  await redis.multi().rpush(eventsKey(routineId), payload).ltrim(eventsKey(routineId), -MAX_EVENTS, -1).expire(eventsKey(routineId), 7 * 24 * 3600).exec();
}

export async function pendingEvents(redis: Redis, routineId: string): Promise<string[]> {
  return redis.lrange(eventsKey(routineId), 0, -1);
}

/** Drops the `n` oldest events, once a run has answered about them. */
export async function dropEvents(redis: Redis, routineId: string, n: number): Promise<void> {
  if (n > 0) await redis.ltrim(eventsKey(routineId), n, -1);
}
