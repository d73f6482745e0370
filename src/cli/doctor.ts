import { accessSync, constants, mkdirSync } from 'node:fs';
import type { Command } from 'commander';
import Database from 'better-sqlite3';
import pg from 'pg';
import { ConfigError, loadConfig, type LoadedConfig } from '../config/load.js';
import { resolveDbTarget } from '../db/client.js';
import type { UserError } from '../errors.js';
import { openVault } from '../vault/index.js';
import { keyFilePath, loadMasterKey } from '../vault/master-key.js';
import { createRedis, displayRedis } from '../queues.js';
import { findRedisServer, redisInstallHint, redisServerVersion } from '../redis/embedded.js';

type Level = 'ok' | 'warn' | 'fail';
interface Finding { level: Level; what: string; fix?: string }

const MARK: Record<Level, string> = { ok: 'ok  ', warn: 'WARN', fail: 'FAIL' };

function checkNode(): Finding {
  const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
  const ok = major > 20 || (major === 20 && minor >= 19);
  return ok ? { level: 'ok', what: `Node ${process.versions.node}` } : { level: 'fail', what: `Node ${process.versions.node} is too old`, fix: 'install Node 20.19 or newer (https://nodejs.org or your package manager)' };
}

async function checkRedis(loaded: LoadedConfig): Promise<Finding> {
  const url = loaded.config.redis.url;
  if (!url) {
    const bin = findRedisServer();
    if (!bin) return { level: 'fail', what: 'Redis: no REDIS_URL and redis-server is not installed', fix: `${redisInstallHint()} (or set REDIS_URL)` };
    return { level: 'ok', what: `Redis: embedded, ${bin} ${redisServerVersion(bin) ?? ''}`.trim() };
  }
  const client = createRedis({ url }, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 3000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    const info = await client.info('server');
    const version = /redis_version:(\S+)/.exec(info)?.[1] ?? '?';
    const policy = ((await client.config('GET', 'maxmemory-policy').catch(() => [])) as string[])[1];
    if (policy && policy !== 'noeviction') return { level: 'warn', what: `Redis ${version} at ${displayRedis({ url })} has maxmemory-policy ${policy}`, fix: 'set maxmemory-policy noeviction, or queued messages can be evicted' };
    return { level: 'ok', what: `Redis ${version} at ${displayRedis({ url })}` };
  } catch (err) {
    return { level: 'fail', what: `Redis at ${displayRedis({ url })} is not reachable: ${(err as Error).message}`, fix: 'start the server or correct REDIS_URL' };
  } finally {
    client.disconnect();
  }
}

async function checkDatabase(loaded: LoadedConfig): Promise<Finding> {
  const target = resolveDbTarget(loaded.config.database.url, loaded.home);
  if (target.kind === 'sqlite') {
    try {
      mkdirSync(loaded.home, { recursive: true, mode: 0o700 });
      accessSync(loaded.home, constants.W_OK);
      const db = new Database(target.url, { timeout: 3000 });
      db.prepare('SELECT 1').get();
      db.close();
      return { level: 'ok', what: `database: SQLite ${target.display}` };
    } catch (err) {
      return { level: 'fail', what: `database: SQLite ${target.display}: ${(err as Error).message}`, fix: `make ${loaded.home} writable, or set BULWARK_HOME` };
    }
  }
  const client = new pg.Client({ connectionString: target.url, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    const { rows } = await client.query<{ v: string }>('SHOW server_version');
    return { level: 'ok', what: `database: PostgreSQL ${rows[0]?.v} at ${target.display}` };
  } catch (err) {
    return { level: 'fail', what: `database: PostgreSQL at ${target.display}: ${(err as Error).message}`, fix: 'check DATABASE_URL and that the server accepts connections' };
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** The master key: present (or about to be created), private, and the one this database's vault was made with. */
async function checkVault(loaded: LoadedConfig): Promise<Finding> {
  let source: string;
  try {
    const key = loadMasterKey(loaded.home, { create: false });
    source = key.source === 'env' ? 'BULWARK_MASTER_KEY' : `${key.path} (0600)`;
  } catch (err) {
    if (/no master key/.test((err as Error).message)) return { level: 'ok', what: `vault: no master key yet; the first start creates ${keyFilePath(loaded.home)} (back it up)` };
    return { level: 'fail', what: `vault: ${(err as Error).message}`, ...((err as UserError).fix ? { fix: (err as UserError).fix } : {}) };
  }
  try {
    const { vault, close } = await openVault(loaded);
    try {
      const n = (await vault.list()).length;
      return { level: 'ok', what: `vault: master key from ${source} opens the vault (${n} secret${n === 1 ? '' : 's'})` };
    } finally {
      await close();
    }
  } catch (err) {
    return { level: 'fail', what: `vault: ${(err as Error).message}`, ...((err as UserError).fix ? { fix: (err as UserError).fix } : {}) };
  }
}

/** Asks the provider's model list endpoint: proves the URL, the network and the key, without spending tokens. */
async function checkLlm(loaded: LoadedConfig): Promise<Finding> {
  const llm = loaded.config.llm;
  if (!llm.provider) return { level: 'warn', what: 'LLM: not configured (chat replies will explain how to configure one)', fix: 'set BULWARK_LLM_PROVIDER, BULWARK_LLM_MODEL and BULWARK_LLM_API_KEY, or BULWARK_LLM_BASE_URL for Ollama' };
  const base = (llm.base_url ?? (llm.provider === 'anthropic' ? 'https://api.anthropic.com/v1' : 'https://api.openai.com/v1')).replace(/\/$/, '');
  const headers: Record<string, string> = llm.provider === 'anthropic'
    ? { 'x-api-key': llm.api_key ?? '', 'anthropic-version': '2023-06-01' }
    : llm.api_key ? { authorization: `Bearer ${llm.api_key}` } : {};
  try {
    const r = await fetch(`${base}/models`, { headers, signal: AbortSignal.timeout(5000) });
    if (r.status === 401 || r.status === 403) return { level: 'fail', what: `LLM: ${base} rejected the API key (HTTP ${r.status})`, fix: 'check BULWARK_LLM_API_KEY' };
    if (!r.ok) return { level: 'warn', what: `LLM: ${base}/models answered HTTP ${r.status}; the model may still work` };
    const body = (await r.json().catch(() => ({}))) as { data?: Array<{ id?: string }> };
    const ids = (body.data ?? []).map((m) => m.id);
    if (ids.length > 0 && !ids.includes(llm.model)) return { level: 'warn', what: `LLM: ${base} is reachable but does not list model "${llm.model}"`, fix: `pick one of: ${ids.slice(0, 8).join(', ')}${llm.provider === 'openai-compatible' ? ' (Ollama: ollama pull MODEL)' : ''}` };
    return { level: 'ok', what: `LLM: ${llm.provider} ${llm.model} at ${base}` };
  } catch (err) {
    return { level: 'fail', what: `LLM: ${base} is not reachable: ${(err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message}`, fix: llm.provider === 'openai-compatible' ? 'start the model server (Ollama: `ollama serve`) or correct BULWARK_LLM_BASE_URL' : 'check the network, or BULWARK_LLM_BASE_URL' };
  }
}

async function checkHub(loaded: LoadedConfig): Promise<Finding> {
  const { host, port } = loaded.config.server;
  const h = host === '0.0.0.0' ? '127.0.0.1' : host;
  try {
    const r = await fetch(`http://${h}:${port}/readyz`, { signal: AbortSignal.timeout(3000) });
    const body = (await r.json()) as { ready: boolean; checks: Array<{ name: string; ok: boolean; detail?: string }> };
    const bad = body.checks.filter((c) => !c.ok).map((c) => `${c.name} (${c.detail})`);
    return body.ready ? { level: 'ok', what: `hub: running and ready at http://${h}:${port}` } : { level: 'fail', what: `hub: running at http://${h}:${port} but not ready: ${bad.join(', ')}` };
  } catch {
    return { level: 'warn', what: `hub: not running at http://${h}:${port}`, fix: 'start it with `bulwark start` (or `npm run up`)' };
  }
}

export function registerDoctor(program: Command): void {
  program.command('doctor')
    .description('check Node, configuration, Redis, the database and the LLM, and say what to fix')
    .action(async () => {
      const findings: Finding[] = [checkNode()];
      let loaded: LoadedConfig | undefined;
      try {
        loaded = loadConfig();
        findings.push({ level: 'ok', what: `config: ${loaded.file ?? 'no bulwark.toml (defaults + environment)'}; data directory ${loaded.home}` });
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        findings.push(...err.problems.map((p) => ({ level: 'fail' as const, what: `config: ${p}` })));
      }
      if (loaded) findings.push(...(await Promise.all([checkRedis(loaded), checkDatabase(loaded), checkVault(loaded), checkLlm(loaded), checkHub(loaded)])));
      for (const f of findings) process.stdout.write(`${MARK[f.level]} ${f.what}${f.fix ? `\n     fix: ${f.fix}` : ''}\n`);
      const failed = findings.filter((f) => f.level === 'fail').length;
      process.stdout.write(failed ? `\n${failed} problem(s) to fix.\n` : '\nEverything needed to run Bulwark is in place.\n');
      process.exitCode = failed ? 1 : 0;
    });
}
