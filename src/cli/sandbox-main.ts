/**
 * Stand-alone entry for the sandbox command, so it can be used and tested without the main CLI:
 * `node --import tsx src/cli/sandbox-main.ts run file.js [--json] ...` is `bulwark sandbox run ...`.
 */
import { Command } from 'commander';
import { registerSandboxCommand } from './sandbox.js';

const program = new Command('bulwark');
registerSandboxCommand(program);
await program.parseAsync(['sandbox', ...process.argv.slice(2)], { from: 'user' });
