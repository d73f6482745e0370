import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/load.js';
import { startHub, type Hub } from '../../src/hub.js';
import { createLogger, silentLogger, type Logger } from '../../src/logger.js';
import { WORKING_TEXT } from '../../src/channels/slack/send.js';
import { ApiClient } from './hub.js';
import { APP_TOKEN, BOT_TOKEN, nextTs, type ApiCall, type SlackStandIn } from './slack-standin.js';

/* The hub with the Slack channel on, and what tests ask of it (test/slack*.test.ts). */

export const OWNER = 'UOWNER01';
export const GENERAL = 'CGENERAL1';

export { until } from './wait.js';

export interface Running { hub: Hub; api: ApiClient; home: string; close(keepHome?: boolean): Promise<void> }

export async function startSlackHub(o: { home?: string; redisUrl: string; env: Record<string, string>; toml: string; secrets?: Record<string, string>; logger?: Logger }): Promise<Running> {
  const home = o.home ?? mkdtempSync(join(tmpdir(), 'bulwark-slack-'));
  writeFileSync(join(home, 'bulwark.toml'), o.toml);
  const loaded = loadConfig({ BULWARK_HOME: home, BULWARK_PORT: '0', REDIS_URL: o.redisUrl, ...o.env }, home);
  const secrets = o.secrets ?? { 'slack.bot_token': BOT_TOKEN, 'slack.app_token': APP_TOKEN };
  const hub = await startHub({ loaded, role: 'all', logger: o.logger ?? (process.env.DEBUG ? createLogger({ level: 'debug', pretty: false }) : silentLogger()), secret: async (name) => secrets[name] });
  const api = new ApiClient(hub.url, readFileSync(join(home, 'api-token'), 'utf8').trim());
  return { hub, api, home, close: async (keepHome = false) => { await hub.close(); if (!keepHome) rmSync(home, { recursive: true, force: true }); } };
}

export async function slackCheck(url: string): Promise<{ ok: boolean; detail?: string }> {
  const r = (await (await fetch(`${url}/readyz`)).json()) as { checks: Array<{ name: string; ok: boolean; detail?: string }> };
  return r.checks.find((c) => c.name === 'channel:slack') ?? { ok: false, detail: 'no channel:slack check' };
}

export const dm = (user: string, channel: string, text: string, extra: Record<string, unknown> = {}) =>
  ({ type: 'message', channel, channel_type: 'im', user, text, ts: nextTs(), ...extra });
export const inChannel = (user: string, text: string, extra: Record<string, unknown> = {}) =>
  ({ type: 'message', channel: GENERAL, channel_type: 'channel', user, text, ts: nextTs(), ...extra });

/** What a user sees in a channel: posted texts (not the "working…" placeholder) and the placeholder's replacements. */
export function visible(slack: SlackStandIn, channel: string): ApiCall[] {
  return slack.calls.filter((c) => c.args.channel === channel && ((c.method === 'chat.postMessage' && c.args.text !== WORKING_TEXT) || c.method === 'chat.update' || c.method === 'chat.postEphemeral'));
}
export const withText = (slack: SlackStandIn, channel: string, text: string) => visible(slack, channel).filter((c) => c.args.text === text);

