import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ToolRegistry } from '../../src/agent/tools.js';
import { loadConfig } from '../../src/config/load.js';
import { startHub, type Hub, type HubOptions, type Role } from '../../src/hub.js';
import { createLogger, silentLogger } from '../../src/logger.js';

/** A small client of the hub's HTTP API, as a browser or `bulwark chat` would use it. */
export class ApiClient {
  constructor(readonly base: string, private readonly token: string) {}

  async request(method: string, path: string, body?: unknown, headers: Record<string, string> = {}, signal?: AbortSignal): Promise<{ status: number; json: any; headers: Headers }> {
    const r = await fetch(this.base + path, {
      ...(signal ? { signal } : {}),
      method,
      headers: { authorization: `Bearer ${this.token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
      ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
      redirect: 'manual',
    });
    const text = await r.text();
    let json: any;
    try { json = text ? JSON.parse(text) : undefined; } catch { json = text; }
    return { status: r.status, json, headers: r.headers };
  }

  async send(text: string, extra: Record<string, unknown> = {}): Promise<{ conversationId: string; messageId: string; duplicate: boolean }> {
    const r = await this.request('POST', '/api/messages', { text, ...extra });
    if (r.status !== 202) throw new Error(`send failed: ${r.status} ${JSON.stringify(r.json)}`);
    return r.json;
  }

  async messages(conversationId: string, after = 0): Promise<Array<{ id: string; seq: number; role: string; text: string; replyTo: string | null }>> {
    const r = await this.request('GET', `/api/conversations/${conversationId}/messages?after=${after}&limit=500`);
    if (r.status !== 200) throw new Error(`list failed: ${r.status} ${JSON.stringify(r.json)}`);
    return r.json.messages;
  }

  /** Polls until the reply to `messageId` is stored. */
  async waitReply(conversationId: string, messageId: string, timeoutMs = 20_000): Promise<{ text: string; seq: number; id: string }> {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      const reply = (await this.messages(conversationId)).find((m) => m.role === 'assistant' && m.replyTo === messageId);
      if (reply) return reply;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`no reply to ${messageId} within ${timeoutMs} ms`);
  }
}

export interface TestHub { hub: Hub; url: string; home: string; token: string; api: ApiClient; close(): Promise<void> }

/** Starts a hub in this process with a temp data directory and the given environment. */
export async function startTestHub(opts: { env: Record<string, string>; tools?: ToolRegistry; role?: Role; embeddedRedis?: HubOptions['embeddedRedis'] }): Promise<TestHub> {
  const home = mkdtempSync(join(tmpdir(), 'bulwark-test-'));
  const loaded = loadConfig({ BULWARK_HOME: home, BULWARK_PORT: '0', ...opts.env }, home);
  const logger = process.env.DEBUG ? createLogger({ level: 'debug', pretty: false }) : silentLogger();
  const hub = await startHub({ loaded, role: opts.role ?? 'all', logger, ...(opts.tools ? { tools: opts.tools } : {}), ...(opts.embeddedRedis ? { embeddedRedis: opts.embeddedRedis } : {}) });
  const token = readFileSync(join(home, 'api-token'), 'utf8').trim();
  return {
    hub, url: hub.url, home, token, api: new ApiClient(hub.url, token),
    close: async () => { await hub.close(); rmSync(home, { recursive: true, force: true }); },
  };
}

/** LLM settings pointing at a stand-in. */
export function standInEnv(baseUrl: string): Record<string, string> {
  return { BULWARK_LLM_PROVIDER: 'openai-compatible', BULWARK_LLM_BASE_URL: baseUrl, BULWARK_LLM_MODEL: 'standin-model', BULWARK_LLM_API_KEY: 'sk-test-standin-key', BULWARK_LLM_MAX_RETRIES: '2' };
}
