import { mkdirSync } from 'node:fs';
import type { LoadedConfig } from '../config/load.js';
import { openConfiguredDb, type Db } from '../db/client.js';
import { ConversationCipher } from './conversation-keys.js';
import { loadMasterKey, type MasterKey } from './master-key.js';
import type { SecretSource } from './source.js';
import { Vault, webhookContext } from './vault.js';

export { Vault, type SecretInfo } from './vault.js';
export { ConversationCipher } from './conversation-keys.js';
export { loadMasterKey, type MasterKey } from './master-key.js';
export type { SecretSource } from './source.js';

/** The vault and the conversation cipher over an open database: what the hub holds. */
export async function openVaultOn(db: Db, home: string, opts: { create: boolean; env?: NodeJS.ProcessEnv }): Promise<{ vault: Vault; cipher: ConversationCipher; master: MasterKey }> {
  mkdirSync(home, { recursive: true, mode: 0o700 });
  const master = loadMasterKey(home, opts);
  const vault = await Vault.open(db, master, home);
  return { vault, master, cipher: new ConversationCipher(db, () => vault.masterKey()) };
}

/**
 * Opens the database and the vault for a CLI command (`secret`, `sandbox run --secret`,
 * `leakscan`). Creates the master key on first use, like `bulwark start` would.
 */
export async function openVault(loaded: LoadedConfig): Promise<{ vault: Vault; source: SecretSource; db: Db; close(): Promise<void> }> {
  const { db } = await openConfiguredDb(loaded.config.database.url, loaded.home);
  try {
    const { vault } = await openVaultOn(db, loaded.home, { create: true });
    return { vault, source: vault, db, close: () => db.$disconnect() };
  } catch (err) {
    await db.$disconnect();
    throw err;
  }
}

/** The sealer RoutineStore uses for webhook keys. */
export function webhookKeySealer(vault: Vault): { seal(routineId: string, key: string): string; open(routineId: string, sealed: string): string } {
  return {
    seal: (routineId, key) => vault.sealField(webhookContext(routineId), key),
    open: (routineId, sealed) => vault.openField(webhookContext(routineId), sealed),
  };
}
