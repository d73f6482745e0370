import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Queue } from 'bullmq';
import type { ChannelAdapter, ChannelStatus, OutboundMessage } from '../../src/channels/contract.js';
import { startOutbox } from '../../src/channels/outbox.js';
import type { TextCipher } from '../../src/conversations/cipher.js';
import { ConversationStore } from '../../src/conversations/store.js';
import { openVaultOn, webhookKeySealer } from '../../src/vault/index.js';
import { loadConfig } from '../../src/config/load.js';
import { openDb, resolveDbTarget, type Db } from '../../src/db/client.js';
import { startHub, type Hub, type Role } from '../../src/hub.js';
import { createLogger, silentLogger } from '../../src/logger.js';
import { Metrics } from '../../src/metrics.js';
import { ChannelQueues, createQueue } from '../../src/queues.js';
import { ROUTINES } from '../../src/routines/queue.js';
import { draftSchema, type Draft } from '../../src/routines/spec.js';
import { RoutineStore, type RunRecord } from '../../src/routines/store.js';
import { syncSchedules } from '../../src/routines/sync.js';

/** A channel that records what it is asked to send: the stand-in for a chat platform. */
export class RecordingChannel implements ChannelAdapter {
  readonly sent: OutboundMessage[] = [];
  constructor(readonly name = 'standin') {}
  async send(m: OutboundMessage): Promise<void> { this.sent.push(m); }
  status(): ChannelStatus { return { name: this.name, state: 'connected' }; }
  async stop(): Promise<void> {}
}

/** Delivers the outbound queue to a recording channel, as a gateway would. */
export function startRecordingOutbox(redisUrl: string, channel: RecordingChannel, cipher: TextCipher): { close(): Promise<void> } {
  const outbound = new ChannelQueues({ url: redisUrl });
  const workers = startOutbox({ redisTarget: { url: redisUrl }, adapters: new Map([[channel.name, channel]]), outbound, cipher, metrics: new Metrics({ defaults: false }), logger: silentLogger() });
  return { close: async () => { await Promise.all(workers.map((w) => w.close())); await outbound.close(); } };
}

export interface RoutineRig {
  hub: Hub;
  home: string;
  db: Db;
  /** The hub's conversation cipher (same data directory, same master key) and a store over it. */
  cipher: TextCipher;
  conversations: ConversationStore;
  store: RoutineStore;
  queue: Queue;
  /** Creates a routine and applies the schedules (what `bulwark routine add` does). */
  add(d: Partial<Draft> & Pick<Draft, 'name' | 'trigger'>): Promise<string>;
  sync(): Promise<void>;
  /** Polls the routine's history until `done` holds. */
  runsUntil(routineId: string, done: (runs: RunRecord[]) => boolean, ms?: number): Promise<RunRecord[]>;
  close(): Promise<void>;
}

/** A hub in one role (in this process) plus direct access to its database and routines queue. */
export async function startRoutineRig(opts: { role: Role; env: Record<string, string> }): Promise<RoutineRig> {
  const home = mkdtempSync(join(tmpdir(), 'bulwark-routines-'));
  const loaded = loadConfig({ BULWARK_HOME: home, BULWARK_PORT: '0', ...opts.env }, home);
  const logger = process.env.DEBUG ? createLogger({ level: 'debug', pretty: false }) : silentLogger();
  const hub = await startHub({ loaded, role: opts.role, logger });
  const db = await openDb(resolveDbTarget(loaded.config.database.url, home));
  const { cipher, vault } = await openVaultOn(db, home, { create: false });
  const store = new RoutineStore(db, webhookKeySealer(vault));
  const queue = createQueue(ROUTINES, { url: loaded.config.redis.url! });
  const sync = async () => { await syncSchedules(store, queue, silentLogger()); };
  return {
    hub, home, db, cipher, conversations: new ConversationStore(db, cipher), store, queue, sync,
    add: async (d) => {
      const draft = draftSchema.parse({ target: { channel: 'standin', accountId: 'acct', chatId: `chat-${d.name}` }, instructions: `Say something for ${d.name}.`, maxTokensPerRun: 10_000, ...d });
      const { routine } = await store.create(draft, { owner: 'owner' });
      await sync();
      return routine.id;
    },
    runsUntil: async (routineId, done, ms = 20_000) => {
      const end = Date.now() + ms;
      for (;;) {
        const runs = (await store.history(routineId, 1000)).reverse();
        if (done(runs)) return runs;
        if (Date.now() > end) throw new Error(`timed out; runs so far: ${JSON.stringify(runs.map((r) => [r.outcome, r.detail]))}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    close: async () => {
      await hub.close();
      await queue.close();
      await db.$disconnect();
      rmSync(home, { recursive: true, force: true });
    },
  };
}

export const finished = (runs: RunRecord[]) => runs.filter((r) => r.outcome !== 'running');
