import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/load.js';
import { startHub, type Hub } from '../../src/hub.js';
import { createLogger, silentLogger } from '../../src/logger.js';
import { ApiClient, standInEnv } from './hub.js';
import { waitFor } from './wait.js';

/* The hub with the Telegram channel on, talking to the stand-in (test/telegram*.test.ts). */

/**
 * Writes `[channels.telegram]` (enabled, the stand-in's api_root, short polls, `settings` lines such
 * as `owners = [1]`) into `home`, starts the hub with the default toolset and the LLM stand-in, and
 * waits until Telegram is connected. The bot token comes from `secret`, as from the vault.
 */
export async function startTelegramHub(o: { home: string; redisUrl: string; llmUrl: string; tgUrl: string; token: string; settings: string[] }): Promise<{ hub: Hub; api: ApiClient }> {
  writeFileSync(join(o.home, 'bulwark.toml'), ['[channels.telegram]', 'enabled = true', `api_root = "${o.tgUrl}"`, 'poll_timeout_s = 5', 'rate_per_chat_ms = 20', ...o.settings, ''].join('\n'));
  const env = { BULWARK_HOME: o.home, BULWARK_PORT: '0', BULWARK_CONFIG: join(o.home, 'bulwark.toml'), REDIS_URL: o.redisUrl, ...standInEnv(o.llmUrl), BULWARK_WORKER_SHUTDOWN_MS: '5000' };
  const logger = process.env.DEBUG ? createLogger({ level: 'debug', pretty: false }) : silentLogger();
  const hub = await startHub({ loaded: loadConfig(env, o.home), role: 'all', logger, secret: async (name) => (name === 'telegram.token' ? o.token : undefined) });
  const api = new ApiClient(hub.url, readFileSync(join(o.home, 'api-token'), 'utf8').trim());
  await waitFor(async () => (await api.request('GET', '/readyz')).status === 200, 'the hub with Telegram connected');
  return { hub, api };
}
