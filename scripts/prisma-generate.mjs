#!/usr/bin/env node
// Generates both Prisma clients (SQLite and PostgreSQL) from prisma/schema.prisma.
// Prisma binds a generated client to one provider, so the PostgreSQL schema is derived from the
// SQLite one here rather than kept by hand. PRISMA_SCHEMA_ENGINE_BINARY is set because `generate`
// does not need the native schema engine, and fetching it fails on machines without internet.
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const source = readFileSync(join(root, 'prisma/schema.prisma'), 'utf8');

export function derivePostgresSchema(text) {
  return text
    .replace('provider = "sqlite"', 'provider = "postgresql"')
    .replace('output       = "../src/generated/sqlite"', 'output       = "../../src/generated/postgres"')
    .replace(/^\/\/ The source of truth[\s\S]*?\n\n/, '// GENERATED from prisma/schema.prisma by scripts/prisma-generate.mjs: edit that file, not this one.\n\n');
}

const pg = derivePostgresSchema(source);
if (!pg.includes('postgresql') || !pg.includes('generated/postgres')) {
  console.error('prisma-generate: could not derive the PostgreSQL schema (provider/output lines changed?)');
  process.exit(1);
}
mkdirSync(join(root, 'prisma/postgres'), { recursive: true });
writeFileSync(join(root, 'prisma/postgres/schema.prisma'), pg);

const prismaBin = join(root, 'node_modules/prisma/build/index.js');
for (const schema of ['prisma/schema.prisma', 'prisma/postgres/schema.prisma']) {
  const r = spawnSync(process.execPath, [prismaBin, 'generate', '--schema', schema], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, PRISMA_SCHEMA_ENGINE_BINARY: process.env.PRISMA_SCHEMA_ENGINE_BINARY ?? '/bin/false', PRISMA_HIDE_UPDATE_MESSAGE: '1' },
  });
  if (r.status !== 0) {
    console.error(`prisma-generate: prisma generate --schema ${schema} failed`);
    process.exit(r.status ?? 1);
  }
}
console.error('prisma-generate: generated src/generated/sqlite and src/generated/postgres');
