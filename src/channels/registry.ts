import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import type { ChatAdapter, ChatChannelName, ChatCore, ChatDeps } from './chat.js';

/*
 * Which chat platforms exist and which are on. Each platform lives in its own folder,
 * src/channels/<name>/index.ts, exporting
 *   createAdapter(core: ChatCore): Promise<ChatAdapter>
 *   probe?(core: ChatCore): Promise<{ ok: boolean; detail: string }>      (`bulwark channels test`)
 * loaded on demand, so a platform's library is only imported when that channel is used.
 */

export const CHAT_CHANNELS = ['telegram', 'slack', 'discord', 'whatsapp'] as const satisfies readonly ChatChannelName[];

export interface AdapterModule {
  createAdapter(core: ChatCore): Promise<ChatAdapter>;
  probe?(core: ChatCore): Promise<{ ok: boolean; detail: string }>;
}

/** `bulwark channels enable|disable` writes overrides here; they win over the config file at the next start. */
export const overridesFile = (home: string) => join(home, 'channels.json');
const overridesSchema = z.record(z.string(), z.boolean());

export function readOverrides(home: string): Record<string, boolean> {
  const f = overridesFile(home);
  if (!existsSync(f)) return {};
  const parsed = overridesSchema.safeParse((() => { try { return JSON.parse(readFileSync(f, 'utf8')); } catch { return undefined; } })());
  return parsed.success ? parsed.data : {};
}

export function writeOverride(home: string, name: string, enabled: boolean): void {
  const next = { ...readOverrides(home), [name]: enabled };
  const f = overridesFile(home);
  writeFileSync(`${f}.tmp`, JSON.stringify(next, null, 2) + '\n', { mode: 0o600 });
  renameSync(`${f}.tmp`, f);
}

export function isEnabled(deps: Pick<ChatDeps, 'channels' | 'home'>, name: ChatChannelName): boolean {
  return readOverrides(deps.home)[name] ?? deps.channels[name].enabled;
}

export async function loadAdapterModule(name: ChatChannelName): Promise<AdapterModule> {
  return (await import(`./${name}/index.js`)) as AdapterModule;
}

