import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { openDb, resolveDbTarget, type Db } from '../db/client.js';

/** A fresh data directory with a migrated SQLite database, for the audit and approvals tests. */
export interface TempDb { home: string; file: string; open(): Promise<Db>; raw(): Database.Database; cleanup(): void }

export function tempDb(): TempDb {
  const home = mkdtempSync(join(tmpdir(), 'bulwark-audit-'));
  const file = join(home, 'bulwark.db');
  return {
    home, file,
    open: () => openDb(resolveDbTarget(`file:${file}`, home)),
    // Plain SQL on the file: what someone who edits the database behind the hub's back does.
    raw: () => new Database(file),
    cleanup: () => rmSync(home, { recursive: true, force: true }),
  };
}
