import type { Queue } from 'bullmq';
import { enqueueRun } from './queue.js';
import { describeTrigger, formatTarget } from './spec.js';
import type { RoutineStore } from './store.js';

/*
 * `/routines` in chat, answered by the agent worker before any model call. Chat may list routines
 * and run existing ones. Creating or widening a routine is a capability change: it will be a change
 * request for the approval gateway; until that exists, chat points the owner at the CLI.
 */

const USAGE = [
  '`/routines` lists your routines; `/routines run NAME` runs one now.',
  'To create or change a routine, run `bulwark routine add|edit|rm` on the hub (see `bulwark routine --help`).',
].join('\n');

const CHANGE_REFUSED = [
  'Creating, changing or removing routines from chat needs your approval, and the approval step does not exist yet.',
  'Run it on the hub instead, e.g. `bulwark routine add standup --to web:<conversation id> --cron "30 8 * * 1-5" --tz Europe/Berlin --prompt "…"`.',
].join('\n');

export type ChatCommand = (text: string) => Promise<string | undefined>;

/** Answers `/routines …`; any other text is not a command (undefined). */
export function routineCommands(deps: { store: RoutineStore; queue: Queue; owner: string }): ChatCommand {
  return async (text) => {
    const m = /^\/routines(?:@\S+)?(?:\s+([\s\S]*))?$/.exec(text.trim());
    if (!m) return undefined;
    const [verb = 'list', name, ...rest] = (m[1] ?? '').trim().split(/\s+/).filter(Boolean);
    switch (verb) {
      case 'list': {
        const all = await deps.store.list(deps.owner);
        if (all.length === 0) return `No routines yet.\n\n${USAGE}`;
        const lines = await Promise.all(all.map(async (r) => {
          const last = await deps.store.lastRun(r.id);
          const lastText = last ? `last: ${last.outcome} ${last.startedAt.toISOString().slice(0, 16).replace('T', ' ')} UTC` : 'never ran';
          return `- \`${r.name}\` — ${describeTrigger(r)} → ${formatTarget(r.target)} · ${r.enabled ? 'on' : 'off'} · ${lastText}`;
        }));
        return [`**Routines** (${all.length})`, ...lines, '', USAGE].join('\n');
      }
      case 'run': {
        if (!name || rest.length > 0) return 'Usage: `/routines run NAME`';
        const r = await deps.store.getByName(deps.owner, name);
        if (!r) return `There is no routine named \`${name}\`. \`/routines\` lists them.`;
        await enqueueRun(deps.queue, r.id, 'manual');
        return `Started \`${r.name}\`; what it says goes to ${formatTarget(r.target)}. Its budget still applies.`;
      }
      case 'add': case 'create': case 'edit': case 'rm': case 'remove': case 'enable': case 'disable':
        return CHANGE_REFUSED;
      default:
        return USAGE;
    }
  };
}
