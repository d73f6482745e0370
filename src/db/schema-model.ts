import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/*
 * What the migrations must produce, read from prisma/schema.prisma. Tests compare a migrated
 * database against it, because `prisma migrate diff` (which would do this) needs Prisma's native
 * schema engine, which cannot be downloaded on offline machines. The parser covers the features
 * this schema uses: scalar fields, `?`, relation fields, @unique, @@unique and @@index.
 */

export interface ExpectedModel {
  name: string;
  columns: Array<{ name: string; type: string; optional: boolean }>;
  /** "unique:a,b" or "index:a,b", excluding primary keys. */
  indexes: string[];
}

const SCALARS = new Set(['String', 'Int', 'BigInt', 'Boolean', 'DateTime', 'Float', 'Decimal', 'Json', 'Bytes']);

export function expectedModel(schemaPath = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'prisma', 'schema.prisma')): ExpectedModel[] {
  const text = readFileSync(schemaPath, 'utf8');
  const models: ExpectedModel[] = [];
  for (const m of text.matchAll(/^model (\w+) \{([\s\S]*?)^\}/gm)) {
    const model: ExpectedModel = { name: m[1]!, columns: [], indexes: [] };
    for (const raw of m[2]!.split('\n')) {
      const line = raw.replace(/\/\/.*$/, '').trim();
      const block = /^@@(unique|index)\(\[([^\]]+)\]/.exec(line);
      if (block) {
        model.indexes.push(`${block[1]}:${block[2]!.split(',').map((s) => s.trim()).join(',')}`);
        continue;
      }
      const field = /^(\w+)\s+(\w+)(\?|\[\])?(.*)$/.exec(line);
      if (!field || !SCALARS.has(field[2]!)) continue;
      model.columns.push({ name: field[1]!, type: field[2]!, optional: field[3] === '?' });
      if (/@unique\b/.test(field[4]!)) model.indexes.push(`unique:${field[1]}`);
    }
    models.push(model);
  }
  return models;
}
