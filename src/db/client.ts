import { UserError } from '../errors.js';
import { mkdirSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import type { PrismaClient as SqliteClient } from '../generated/sqlite/client.js';
import { migratePostgres, migrateSqlite } from './migrate.js';

/**
 * The database handle used by the rest of the code. Both generated clients expose the same model API
 * (they come from one schema), so the SQLite client's type stands for both.
 */
export type Db = SqliteClient;

export interface DbTarget { kind: 'sqlite' | 'postgres'; url: string; display: string }

/** Resolves the configured database: DATABASE_URL, else a SQLite file in the data directory. */
export function resolveDbTarget(url: string | undefined, home: string): DbTarget {
  if (url?.startsWith('postgres')) {
    return { kind: 'postgres', url, display: url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@') };
  }
  const file = url ? url.slice('file:'.length) : join(home, 'bulwark.db');
  const abs = isAbsolute(file) ? file : resolve(home, file);
  return { kind: 'sqlite', url: abs, display: abs };
}

/**
 * Applies pending migrations, then opens the Prisma client. Only the client and driver of the
 * configured database are loaded (each brings its own query compiler, tens of MB of memory).
 */
export async function openDb(target: DbTarget): Promise<Db> {
  if (target.kind === 'sqlite') {
    const [{ PrismaBetterSqlite3 }, { PrismaClient: SqliteClient }] = await Promise.all([import('@prisma/adapter-better-sqlite3'), import('../generated/sqlite/client.js')]);
    mkdirSync(dirname(target.url), { recursive: true, mode: 0o700 });
    migrateSqlite(target.url);
    const client = new SqliteClient({ adapter: new PrismaBetterSqlite3({ url: target.url, timeout: 10_000 }) });
    // WAL with synchronous=NORMAL: no fsync per commit (which would stall the event loop, since
    // better-sqlite3 is synchronous), still safe against a crashed process; an OS crash or power
    // loss can drop the last moments of history. Queued messages themselves live in Redis.
    await client.$queryRawUnsafe('PRAGMA synchronous = NORMAL');
    return client;
  }
  await migratePostgres(target.url);
  const [{ PrismaPg }, { PrismaClient: PostgresClient }] = await Promise.all([import('@prisma/adapter-pg'), import('../generated/postgres/client.js')]);
  const client = new PostgresClient({ adapter: new PrismaPg({ connectionString: target.url, max: 10 }) });
  return client as unknown as Db;
}

/**
 * Rewrites the database so that deleted and overwritten rows leave no trace in its files: used
 * after plaintext message bodies were sealed, so the old text is gone from disk too.
 */
export async function compactDb(db: Db, kind: DbTarget['kind']): Promise<void> {
  if (kind === 'sqlite') {
    await db.$executeRawUnsafe('VACUUM');
    await db.$queryRawUnsafe('PRAGMA wal_checkpoint(TRUNCATE)');
  } else {
    await db.$executeRawUnsafe('VACUUM FULL "Message"');
  }
}

/**
 * Opens (and migrates) the database a configuration names. A failure is a UserError that says what
 * to check — the hub and every command that works with the hub stopped open it this way.
 */
export async function openConfiguredDb(databaseUrl: string | undefined, home: string): Promise<{ db: Db; target: DbTarget }> {
  const target = resolveDbTarget(databaseUrl, home);
  try {
    return { db: await openDb(target), target };
  } catch (err) {
    throw new UserError(`cannot open the database ${target.display}: ${(err as Error).message}`, target.kind === 'postgres' ? 'check DATABASE_URL and that PostgreSQL accepts connections (`bulwark doctor`)' : `check that ${home} is writable (\`bulwark doctor\`)`);
  }
}

/** A write that lost to an existing row with the same unique key (Prisma's P2002): callers re-read. */
export function isUniqueViolation(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: string }).code === 'P2002';
}

/** Cheap liveness probe for /readyz and `bulwark doctor`. */
export async function pingDb(db: Db): Promise<void> {
  await db.$queryRawUnsafe('SELECT 1');
}
