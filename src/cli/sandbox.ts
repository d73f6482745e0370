import { readFile } from 'node:fs/promises';
import { InvalidArgumentError, type Command } from 'commander';
import { normalizeGrant, type CapabilityGrant } from '../sandbox/grant.js';
import { Sandbox } from '../sandbox/index.js';
import { DEFAULT_LIMITS, LIMIT_BOUNDS, resolveLimits, type Limits } from '../sandbox/limits.js';
import { loadAgentManifest } from '../sandbox/manifest.js';
import type { RunResult } from '../sandbox/result.js';

interface RunFlags {
  allowHost: string[];
  memoryMb?: number;
  timeoutMs?: number;
  manifest?: string;
  json?: boolean;
}

/** A commander parser for a whole number within a limit's bounds, so misuse is caught at the flag. */
function limitFlag(field: keyof Limits): (value: string) => number {
  const [min, max] = LIMIT_BOUNDS[field];
  return (value) => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < min || n > max) throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}`);
    return n;
  };
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

async function readCode(file: string): Promise<string> {
  if (file !== '-') return readFile(file, 'utf8');
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Adds `bulwark sandbox run <file.js | ->`: runs a file in the sandbox once and prints the result.
 * Exit status 0 means the sandbox did its job, even when the guest failed (that is the result);
 * a nonzero status means the command itself was misused.
 */
export function registerSandboxCommand(program: Command): void {
  const sandbox = program.command('sandbox').description('run untrusted JavaScript in the QuickJS/WebAssembly sandbox');
  sandbox
    .command('run')
    .description('run a JavaScript file (the body of an async function; `return` a JSON value) once')
    .argument('<file>', 'JavaScript file to run, or - to read it from stdin')
    .option('--allow-host <host>', 'let tools.http.fetch reach HOST[:PORT] (https), or http://HOST:PORT; repeatable', collect, [])
    .option('--memory-mb <n>', `guest memory cap in MiB (default ${DEFAULT_LIMITS.memoryMb})`, limitFlag('memoryMb'))
    .option('--timeout-ms <n>', `deadline for the whole run in milliseconds (default ${DEFAULT_LIMITS.timeoutMs})`, limitFlag('timeoutMs'))
    .option('--manifest <path>', 'start from an agent manifest (TOML) instead of the defaults')
    .option('--json', 'print one JSON object instead of a readable summary')
    .action(async (file: string, flags: RunFlags, cmd: Command) => {
      let code: string;
      try {
        code = await readCode(file);
      } catch (err) {
        cmd.error(`error: cannot read ${file === '-' ? 'stdin' : file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
      let grant: CapabilityGrant;
      let limits: Limits;
      try {
        const base = flags.manifest ? await loadAgentManifest(flags.manifest) : undefined;
        grant = normalizeGrant({ http: [...(base?.grant.http ?? []), ...flags.allowHost], tools: [...(base?.grant.tools ?? [])] });
        limits = resolveLimits({ memoryMb: flags.memoryMb, timeoutMs: flags.timeoutMs }, base?.limits);
      } catch (err) {
        cmd.error(`error: ${(err as Error).message}`);
      }
      const box = new Sandbox({ workers: 1, poolSize: 1, defaults: limits });
      let result: RunResult;
      try {
        result = await box.run(code, { grant, limits });
      } finally {
        await box.close();
      }
      process.stdout.write(flags.json ? `${JSON.stringify(result)}\n` : formatResult(result));
    });
}

/** A readable rendering of a run result for people at a terminal. */
export function formatResult(result: RunResult): string {
  const lines: string[] = [];
  if (result.ok) lines.push(`ok: ${JSON.stringify(result.value, null, 2)}`);
  else lines.push(`error (${result.error.kind}): ${result.error.message}`);
  if (result.logs.length) {
    lines.push('logs:');
    for (const line of result.logs) lines.push(`  ${line}`);
  }
  const s = result.stats;
  lines.push(`stats: ${s.durationMs.toFixed(1)} ms, ${s.hostCalls} host calls, ${s.outputBytes} bytes of output, ${(s.memoryBytes / 1048576).toFixed(1)} MiB heap`);
  return `${lines.join('\n')}\n`;
}
