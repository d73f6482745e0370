#!/usr/bin/env node
// Entry point of the `bulwark` command: runs the compiled CLI, or says how to build it.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const main = join(root, 'dist', 'cli', 'main.js');
if (!existsSync(main)) {
  process.stderr.write(`bulwark: the CLI is not built yet (${main} is missing).\n  fix: run \`npm run build\` in ${root} (or \`npm run up\`, which builds and starts the hub)\n`);
  process.exit(1);
}
await import(main);
