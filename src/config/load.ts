import { readFileSync, existsSync, statSync } from 'node:fs';
import { resolve, isAbsolute, join } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { z } from 'zod';
import { configSchema, ENV_KEYS, type Config } from './schema.js';

/** A configuration problem, phrased so the user can fix it without reading code. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

export interface LoadedConfig {
  config: Config;
  /** Absolute data directory. */
  home: string;
  /** The TOML file that was read, if any. */
  file?: string;
}

function setPath(target: Record<string, any>, path: string, value: unknown): void {
  const parts = path.split('.');
  let node = target;
  for (const p of parts.slice(0, -1)) {
    if (typeof node[p] !== 'object' || node[p] === null) node[p] = {};
    node = node[p];
  }
  node[parts.at(-1)!] = value;
}

/** Edit distance, for "did you mean" on misspelt variable names. */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length]!;
}

function closest(name: string, candidates: string[]): string | undefined {
  const [best] = candidates.map((c) => [c, distance(name, c)] as const).sort((x, y) => x[1] - y[1]);
  return best && best[1] <= 4 ? best[0] : undefined;
}

function describeIssue(issue: z.core.$ZodIssue, origin: (key: string) => string): string {
  const key = issue.path.join('.');
  if (issue.code === 'unrecognized_keys') {
    const where = key ? `${key}.` : '';
    return issue.keys.map((k) => `unknown key "${where}${k}" in ${origin(where + k)}: remove it or check the spelling (see README, Configuration)`).join('\n  - ');
  }
  return `${key || '(root)'} (${origin(key)}): ${issue.message}`;
}

/**
 * Keys read from the environment only (never from the config file, never into the config object):
 * the vault's master key, read by src/vault/master-key.ts.
 */
export const KEY_ENV: ReadonlySet<string> = new Set(['BULWARK_MASTER_KEY', 'BULWARK_NEW_MASTER_KEY']);

/**
 * Loads the configuration: `bulwark.toml` (from BULWARK_CONFIG, else the data directory, else the
 * working directory; optional), then environment variables on top. Throws ConfigError naming every
 * bad key and how to fix it.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): LoadedConfig {
  const problems: string[] = [];
  const raw: Record<string, any> = {};
  const fromEnv = new Map<string, string>();

  const envHome = env.BULWARK_HOME;
  const candidates = env.BULWARK_CONFIG
    ? [resolve(cwd, env.BULWARK_CONFIG)]
    : [join(resolve(cwd, envHome ?? '.bulwark'), 'bulwark.toml'), resolve(cwd, 'bulwark.toml')];
  const file = candidates.find((f) => existsSync(f));
  if (env.BULWARK_CONFIG && !file) problems.push(`BULWARK_CONFIG points to ${candidates[0]}, which does not exist: create it or unset BULWARK_CONFIG`);
  if (file) {
    try {
      Object.assign(raw, parseToml(readFileSync(file, 'utf8')));
    } catch (err) {
      problems.push(`${file} is not valid TOML: ${(err as Error).message.split('\n')[0]}`);
    }
    const secretKeys = [...(JSON.stringify(raw.llm ?? {}).includes('api_key') ? ['llm.api_key'] : []), ...(JSON.stringify(raw.audit ?? {}).includes('"key"') ? ['audit.key'] : [])];
    if ((statSync(file).mode & 0o077) !== 0 && secretKeys.length > 0) {
      problems.push(`${file} holds ${secretKeys.join(' and ')} but is readable by other users: run chmod 600 ${file}`);
    }
  }

  for (const [name, value] of Object.entries(env)) {
    if (value === undefined || value === '') continue;
    if (KEY_ENV.has(name)) continue;
    if (name in ENV_KEYS) {
      if (name === 'BULWARK_CONFIG') continue;
      const key = ENV_KEYS[name as keyof typeof ENV_KEYS];
      setPath(raw, key, value);
      fromEnv.set(key, name);
    } else if (name.startsWith('BULWARK_')) {
      const hint = closest(name, [...Object.keys(ENV_KEYS), ...KEY_ENV]);
      problems.push(`unknown environment variable ${name}${hint ? `: did you mean ${hint}?` : ''} (unset it; the README lists every variable)`);
    }
  }

  const origin = (key: string) => (fromEnv.has(key) ? `environment variable ${fromEnv.get(key)}` : file ? file : 'defaults');
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) problems.push(...parsed.error.issues.map((i) => describeIssue(i, origin)));
  if (!parsed.success) throw new ConfigError(problems);

  const config = parsed.data;
  const llm = config.llm;
  if (llm.provider && !llm.model) problems.push(`llm.model is required when llm.provider is set: set BULWARK_LLM_MODEL (e.g. gpt-4o-mini, claude-sonnet-4-5, llama3.2)`);
  if (llm.provider === 'openai-compatible' && !llm.base_url) problems.push(`llm.base_url is required for provider openai-compatible: set BULWARK_LLM_BASE_URL (Ollama: http://127.0.0.1:11434/v1)`);
  if ((llm.provider === 'openai' || llm.provider === 'anthropic') && !llm.api_key && !llm.base_url) {
    problems.push(`llm.api_key is required for provider ${llm.provider}: set BULWARK_LLM_API_KEY`);
  }
  if (problems.length > 0) throw new ConfigError(problems);

  const home = isAbsolute(config.home) ? config.home : resolve(cwd, config.home);
  return { config, home, ...(file ? { file } : {}) };
}
