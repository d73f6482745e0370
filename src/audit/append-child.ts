/*
 * Test helper run as its own process by multiprocess.test.ts: appends N entries to the audit log of
 * the SQLite file given on the command line, as a gateway, worker or scheduler process would.
 */
import { openDb, resolveDbTarget } from '../db/client.js';
import { AuditLog } from './log.js';

const [file, home, name, count] = process.argv.slice(2) as [string, string, string, string];
const db = await openDb(resolveDbTarget(`file:${file}`, home));
const log = new AuditLog(db, { home, checkpointEvery: 25 });
await Promise.all(Array.from({ length: Number(count) }, (_, i) => log.append({ kind: 'test.process', actor: name, data: { i } })));
await log.close();
await db.$disconnect();
process.stdout.write(`done ${log.failures}\n`);
