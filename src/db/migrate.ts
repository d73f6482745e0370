import { createHash, randomUUID } from 'node:crypto';
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import pg from 'pg';

/*
 * Applies the Prisma migrations at start-up without the Prisma CLI.
 *
 * Why by hand: `prisma migrate deploy` needs Prisma's native schema engine, which is a download that
 * offline and locked-down machines cannot make. This runner reads the same
 * `prisma/**\/migrations/<name>/migration.sql` files, applies the pending ones in order, each in a
 * transaction, and records them in `_prisma_migrations` exactly as Prisma does (sha256 checksum of the
 * file), so a machine that does have the CLI sees the same history and agrees.
 */

export interface Migration { name: string; sql: string; checksum: string }

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Lists the migrations shipped for a provider, oldest first. */
export function listMigrations(provider: 'sqlite' | 'postgres'): Migration[] {
  const dir = provider === 'sqlite' ? join(ROOT, 'prisma/migrations') : join(ROOT, 'prisma/postgres/migrations');
  return readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(dir, d.name, 'migration.sql')))
    .map((d) => {
      const sql = readFileSync(join(dir, d.name, 'migration.sql'), 'utf8');
      return { name: d.name, sql, checksum: createHash('sha256').update(sql).digest('hex') };
    })
    .sort((a, b) => a.name.localeCompare(b.name));
}

const SQLITE_TABLE = `CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
  "id" TEXT PRIMARY KEY NOT NULL, "checksum" TEXT NOT NULL, "finished_at" DATETIME,
  "migration_name" TEXT NOT NULL, "logs" TEXT, "rolled_back_at" DATETIME,
  "started_at" DATETIME NOT NULL DEFAULT current_timestamp, "applied_steps_count" INTEGER UNSIGNED NOT NULL DEFAULT 0)`;

const PG_TABLE = `CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
  "id" VARCHAR(36) PRIMARY KEY NOT NULL, "checksum" VARCHAR(64) NOT NULL, "finished_at" TIMESTAMPTZ,
  "migration_name" VARCHAR(255) NOT NULL, "logs" TEXT, "rolled_back_at" TIMESTAMPTZ,
  "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(), "applied_steps_count" INTEGER NOT NULL DEFAULT 0)`;

function checkApplied(applied: Map<string, string>, migrations: Migration[]): void {
  for (const m of migrations) {
    const sum = applied.get(m.name);
    if (sum !== undefined && sum !== m.checksum) {
      throw new Error(`migration ${m.name} was changed after it was applied to this database (checksum differs): restore the original migration.sql and add a new migration instead`);
    }
  }
}

/** Applies pending migrations to a SQLite file; returns the names applied. Sets WAL mode. */
export function migrateSqlite(file: string): string[] {
  const db = new Database(file, { timeout: 10_000 });
  try {
    db.pragma('journal_mode = WAL');
    db.exec(SQLITE_TABLE);
    const done: string[] = [];
    // BEGIN IMMEDIATE takes the write lock up front, so two processes starting at once serialize here.
    const run = db.transaction(() => {
      const rows = db.prepare('SELECT migration_name, checksum FROM _prisma_migrations WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL').all() as { migration_name: string; checksum: string }[];
      const applied = new Map(rows.map((r) => [r.migration_name, r.checksum]));
      const all = listMigrations('sqlite');
      checkApplied(applied, all);
      for (const m of all.filter((x) => !applied.has(x.name))) {
        db.exec(m.sql);
        db.prepare(`INSERT INTO _prisma_migrations (id, checksum, finished_at, migration_name, applied_steps_count) VALUES (?, ?, current_timestamp, ?, 1)`)
          .run(randomUUID(), m.checksum, m.name);
        done.push(m.name);
      }
    });
    run.immediate();
    return done;
  } finally {
    db.close();
  }
}

/** Applies pending migrations to PostgreSQL under an advisory lock; returns the names applied. */
export async function migratePostgres(url: string): Promise<string[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const done: string[] = [];
  try {
    // The same lock key Prisma uses, so this and `prisma migrate deploy` never run at once.
    await client.query('SELECT pg_advisory_lock(72707369)');
    await client.query(PG_TABLE);
    const { rows } = await client.query<{ migration_name: string; checksum: string }>('SELECT migration_name, checksum FROM _prisma_migrations WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL');
    const applied = new Map(rows.map((r) => [r.migration_name, r.checksum]));
    const all = listMigrations('postgres');
    checkApplied(applied, all);
    for (const m of all.filter((x) => !applied.has(x.name))) {
      await client.query('BEGIN');
      try {
        await client.query(m.sql);
        await client.query('INSERT INTO _prisma_migrations (id, checksum, finished_at, migration_name, applied_steps_count) VALUES ($1, $2, now(), $3, 1)', [randomUUID(), m.checksum, m.name]);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK');
        throw new Error(`migration ${m.name} failed: ${(err as Error).message}`);
      }
      done.push(m.name);
    }
    await client.query('SELECT pg_advisory_unlock(72707369)');
    return done;
  } finally {
    await client.end();
  }
}
