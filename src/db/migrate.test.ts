import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { listMigrations, migrateSqlite } from './migrate.js';
import { openDb, resolveDbTarget } from './client.js';
import { ConversationStore } from '../conversations/store.js';
import { expectedModel } from './schema-model.js';
import { openVaultOn } from '../vault/index.js';

describe('SQLite migrations', () => {
  it('agree with prisma/schema.prisma: same tables, columns, nullability and indexes', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bulwark-mig-'));
    try {
      const file = join(dir, 'test.db');
      assert.deepEqual(migrateSqlite(file), listMigrations('sqlite').map((m) => m.name));
      const db = new Database(file);
      for (const model of expectedModel()) {
        const cols = db.prepare(`PRAGMA table_info("${model.name}")`).all() as Array<{ name: string; notnull: number; pk: number }>;
        assert.deepEqual(cols.map((c) => c.name).sort(), model.columns.map((c) => c.name).sort(), `columns of ${model.name}`);
        for (const c of model.columns) {
          const col = cols.find((x) => x.name === c.name)!;
          assert.equal(col.notnull === 1 || col.pk === 1, !c.optional, `nullability of ${model.name}.${c.name}`);
        }
        const indexes = (db.prepare(`PRAGMA index_list("${model.name}")`).all() as Array<{ name: string; unique: number; origin: string }>)
          .filter((i) => i.origin === 'c')
          .map((i) => `${i.unique ? 'unique' : 'index'}:${(db.prepare(`PRAGMA index_info("${i.name}")`).all() as Array<{ name: string }>).map((x) => x.name).join(',')}`);
        assert.deepEqual(indexes.sort(), model.indexes.slice().sort(), `indexes of ${model.name}`);
      }
      const recorded = db.prepare('SELECT migration_name, checksum FROM _prisma_migrations').all();
      assert.deepEqual(recorded, listMigrations('sqlite').map((m) => ({ migration_name: m.name, checksum: m.checksum })));
      db.close();
      assert.deepEqual(migrateSqlite(file), [], 'a second start applies nothing');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses to start when an applied migration was edited', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bulwark-mig-'));
    try {
      const file = join(dir, 'test.db');
      migrateSqlite(file);
      const db = new Database(file);
      db.prepare(`UPDATE _prisma_migrations SET checksum = 'tampered'`).run();
      db.close();
      assert.throws(() => migrateSqlite(file), /was changed after it was applied/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the Prisma client works on the migrated database (store round trip)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bulwark-mig-'));
    const db = await openDb(resolveDbTarget(undefined, dir));
    try {
      const { cipher } = await openVaultOn(db, dir, { create: true });
      const store = new ConversationStore(db, cipher);
      const id = await store.ensureConversation({ id: 'c_1', channel: 'web', accountId: 'a', chatId: 'c_1' });
      assert.equal(await store.ensureConversation({ id: 'c_other', channel: 'web', accountId: 'a', chatId: 'c_1' }), id, 'same chat, same conversation');
      const m1 = await store.appendMessage({ id: 'm1', conversationId: id, role: 'user', text: 'hello' });
      const again = await store.appendMessage({ id: 'm1', conversationId: id, role: 'user', text: 'changed' });
      assert.equal(again.seq, m1.seq);
      assert.equal(again.text, 'hello', 'appending an existing id is a no-op');
      await store.appendMessage({ id: 'm2', conversationId: id, role: 'assistant', text: 'hi', replyTo: 'm1' });
      assert.deepEqual((await store.history(id, 10)).map((m) => m.text), ['hello', 'hi']);
      assert.deepEqual((await store.listAfter(id, m1.seq, 10)).map((m) => m.id), ['m2']);
    } finally {
      await db.$disconnect();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the PostgreSQL schema is derived from the SQLite one (only provider and output differ)', () => {
    const root = join(import.meta.dirname, '..', '..');
    const sqlite = readFileSync(join(root, 'prisma/schema.prisma'), 'utf8');
    const pg = readFileSync(join(root, 'prisma/postgres/schema.prisma'), 'utf8');
    const models = (s: string) => s.slice(s.indexOf('\nmodel ') + 1);
    assert.equal(models(pg), models(sqlite));
    assert.match(pg, /provider = "postgresql"/);
    assert.deepEqual(listMigrations('postgres').map((m) => m.name), listMigrations('sqlite').map((m) => m.name), 'one migration per provider for each change');
  });
});
