import { z } from 'zod';
import { activeHoursSchema, timeZoneSchema } from '../config/schema.js';
import { cronProblem } from './cron.js';
import { CHANNEL_NAME } from '../channels/contract.js';

/*
 * The routine: the one contract type of this module. Drafts from the CLI (and, later, approved
 * change requests from chat) are validated here, once; everything downstream trusts a Routine.
 */

export const OUTCOMES = ['running', 'delivered', 'silent', 'skipped_no_input', 'skipped_budget', 'skipped_overlap', 'skipped_inactive_hours', 'skipped_missed', 'failed'] as const;
export type Outcome = (typeof OUTCOMES)[number];

export type Trigger =
  | { type: 'cron'; cron: string }
  | { type: 'interval'; everySeconds: number }
  | { type: 'once'; runAt: number }
  | { type: 'webhook' };

export interface Target { channel: string; accountId: string; chatId: string }

export interface Routine {
  id: string;
  owner: string;
  name: string;
  kind: 'routine' | 'heartbeat';
  target: Target;
  trigger: Trigger;
  /** IANA zone for cron, active hours and the budget's day; undefined only for triggers that need none. */
  timezone: string | undefined;
  instructions: string;
  enabled: boolean;
  activeHours: string | undefined;
  budget: { maxTokensPerRun: number; maxTokensPerDay: number | undefined; maxRunsPerDay: number | undefined };
  missedRuns: 'skip' | 'catch_up';
  hasWebhookSecret: boolean;
}

/** The web chat's account id (src/channels/web/routes.ts): the default for CHANNEL:CHAT targets. */
export const LOCAL_ACCOUNT = 'local';
/** Until the hub knows several people, everything belongs to the one owner. */
export const DEFAULT_OWNER = 'owner';
export const HEARTBEAT_NAME = 'heartbeat';

/** "web:c_abc" or "telegram:BOT:CHAT" → the conversation's key. */
export function parseTarget(text: string): Target {
  const parts = text.split(':');
  const channel = parts[0] ?? '';
  if (!CHANNEL_NAME.test(channel) || parts.length < 2 || parts.some((p) => p === '')) {
    throw new Error(`target "${text}" must be CHANNEL:CHAT (e.g. web:c_AbC123, the web chat's conversation id) or CHANNEL:ACCOUNT:CHAT`);
  }
  if (parts.length === 2) return { channel, accountId: LOCAL_ACCOUNT, chatId: parts[1]! };
  return { channel, accountId: parts[1]!, chatId: parts.slice(2).join(':') };
}

export function formatTarget(t: Target): string {
  return t.accountId === LOCAL_ACCOUNT && !t.chatId.includes(':') ? `${t.channel}:${t.chatId}` : `${t.channel}:${t.accountId}:${t.chatId}`;
}

/** "90", "90s", "15m", "2h", "1d" → seconds. */
export function parseDuration(text: string): number {
  const m = /^(\d+)\s*(s|m|h|d)?$/.exec(text.trim());
  if (!m) throw new Error(`"${text}" is not a duration: use a number with s, m, h or d (e.g. 30s, 15m, 2h, 1d)`);
  return Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86_400 }[(m[2] ?? 's') as 's' | 'm' | 'h' | 'd'];
}

export function formatDuration(seconds: number): string {
  for (const [unit, n] of [['d', 86_400], ['h', 3600], ['m', 60]] as const) if (seconds % n === 0) return `${seconds / n}${unit}`;
  return `${seconds}s`;
}

const count = (max: number) => z.number().int().min(1, 'must be at least 1').max(max, `must be at most ${max}`);

export const triggerSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('cron'), cron: z.string().trim().min(1).max(200) }),
  z.strictObject({ type: z.literal('interval'), everySeconds: count(366 * 86_400) }),
  z.strictObject({ type: z.literal('once'), runAt: z.number().int().positive() }),
  z.strictObject({ type: z.literal('webhook') }),
]);

/** What a person asks for: a routine before it has an id. */
export const draftSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/, 'name must be 1-64 letters, digits, - or _ (it is how you refer to the routine)'),
  target: z.strictObject({ channel: z.string().regex(CHANNEL_NAME), accountId: z.string().min(1).max(256), chatId: z.string().min(1).max(256) }),
  trigger: triggerSchema,
  timezone: timeZoneSchema.optional(),
  instructions: z.string().trim().min(1, 'instructions are empty: give --prompt TEXT or --file PATH').max(20_000, 'instructions are longer than 20000 characters'),
  enabled: z.boolean().default(true),
  activeHours: activeHoursSchema.optional(),
  maxTokensPerRun: count(2_000_000),
  maxTokensPerDay: count(100_000_000).optional(),
  maxRunsPerDay: count(100_000).optional(),
  missedRuns: z.enum(['skip', 'catch_up']).default('catch_up'),
}).superRefine((d, ctx) => {
  if (d.trigger.type === 'cron') {
    const problem = cronProblem(d.trigger.cron, d.timezone);
    if (problem) ctx.addIssue({ code: 'custom', path: ['trigger', 'cron'], message: problem });
  }
  if (d.activeHours && d.activeHours !== 'always' && !d.timezone) {
    ctx.addIssue({ code: 'custom', path: ['activeHours'], message: 'active hours need a time zone: pass --tz Europe/Berlin or set routines.timezone' });
  }
});
export type Draft = z.infer<typeof draftSchema>;

/** The first problem of a failed parse, as one line naming the field. */
export function firstProblem(error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) return 'invalid routine';
  const where = issue.path.length ? `${issue.path.join('.')}: ` : '';
  return `${where}${issue.message}`;
}

/** "cron 30 8 * * 1-5 (Europe/Berlin)", "every 15m", "once at …", "webhook". */
export function describeTrigger(r: Pick<Routine, 'trigger' | 'timezone'>): string {
  const t = r.trigger;
  switch (t.type) {
    case 'cron': return `cron "${t.cron}" (${r.timezone})`;
    case 'interval': return `every ${formatDuration(t.everySeconds)}`;
    case 'once': return `once at ${new Date(t.runAt).toISOString()}`;
    case 'webhook': return 'webhook';
  }
}
