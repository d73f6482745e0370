import { readFileSync } from 'node:fs';
import { parse, TomlError } from 'smol-toml';
import { z } from 'zod';
import { UserError } from '../errors.js';
import { CHANGE_KINDS, type ChangeKind } from './types.js';

/*
 * Deterministic policy: an ordered list of rules in a small TOML file, read top to bottom; the first
 * rule whose kind and target match decides (allow, deny or ask). No rule: ask. No model involved.
 *
 *   [[rule]]
 *   kind = "grant_host"        # a change kind, or "*"
 *   target = "*.internal.example"
 *   action = "deny"
 */

export type RuleAction = 'allow' | 'deny' | 'ask';

export interface Rule {
  kind: ChangeKind | '*';
  /** Glob on the target: `*` any run of characters, `?` one; case-insensitive; whole string. */
  target: string;
  action: RuleAction;
  /** Shown in the request as the reason for the decision. */
  note?: string | undefined;
}

const ruleSchema = z.strictObject({
  kind: z.enum([...CHANGE_KINDS, '*']),
  target: z.string().min(1).max(300).default('*'),
  action: z.enum(['allow', 'deny', 'ask']),
  note: z.string().max(300).optional(),
});
const fileSchema = z.strictObject({ rule: z.array(ruleSchema).max(500).default([]) });

export const EXAMPLE_RULES = `[[rule]]\nkind = "grant_host"\ntarget = "*.internal.example"\naction = "deny"\nnote = "never the internal network"`;

/** Parses approvals.toml; errors name the rule, the key and the fix. */
export function parseRules(text: string, source = 'approvals.toml'): Rule[] {
  let data: unknown;
  try {
    data = parse(text);
  } catch (err) {
    const where = err instanceof TomlError ? ` (line ${err.line}, column ${err.column})` : '';
    throw new UserError(`${source} is not valid TOML${where}: ${(err as Error).message.split('\n')[0]}`, `fix the file; a rule looks like:\n${EXAMPLE_RULES}`);
  }
  const parsed = fileSchema.safeParse(data);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const [, index, key] = issue.path;
    const where = index === undefined ? 'the top level (only [[rule]] tables are allowed)' : `rule ${Number(index) + 1}${key ? `, key "${String(key)}"` : ''}`;
    throw new UserError(`${source}: ${where}: ${issue.message}`, `kinds: ${CHANGE_KINDS.join(', ')} or "*"; actions: allow, deny, ask. Example:\n${EXAMPLE_RULES}`);
  }
  return parsed.data.rule;
}

/** Reads the rule file; a missing file means no rules (everything asks a human). */
export function loadRules(path: string): Rule[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new UserError(`cannot read ${path}: ${(err as Error).message}`, 'check the file\'s permissions, or set approvals.rules');
  }
  return parseRules(text, path);
}

export function globMatch(glob: string, value: string): boolean {
  const re = glob.split('').map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.+^${}()|[\]\\]/g, '\\$&'))).join('');
  return new RegExp(`^${re}$`, 'is').test(value);
}

/** The first rule matching the change, with its 1-based position, or undefined. */
export function matchRule(rules: readonly Rule[], kind: ChangeKind, target: string): { rule: Rule; index: number } | undefined {
  const index = rules.findIndex((r) => (r.kind === '*' || r.kind === kind) && globMatch(r.target, target));
  return index < 0 ? undefined : { rule: rules[index]!, index: index + 1 };
}
