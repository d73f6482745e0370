import { readFile } from 'node:fs/promises';
import { InvalidArgumentError, type Command } from 'commander';
import { loadConfig } from '../config/load.js';
import { UserError } from '../errors.js';
import { normalizeGrant, type CapabilityGrant } from '../sandbox/grant.js';
import { createPolicyEgress, Sandbox, type Egress } from '../sandbox/index.js';
import { createVaultEgress, type EgressEvent } from '../vault/egress.js';
import type { openVault } from '../vault/index.js';
import { DEFAULT_LIMITS, LIMIT_BOUNDS, resolveLimits, type Limits } from '../sandbox/limits.js';
import { loadAgentManifest } from '../sandbox/manifest.js';
import { readStdin } from './stdin.js';
import type { RunResult } from '../sandbox/result.js';

interface RunFlags {
  allowHost: string[];
  secret: string[];
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
  return file === '-' ? readStdin() : readFile(file, 'utf8');
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
    .option('--secret <name>', 'hand the guest the handle {{secret:NAME}} (secrets.NAME); the vault substitutes the value only where its policy allows; repeatable', collect, [])
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
        grant = normalizeGrant({
          http: [...(base?.grant.http ?? []), ...flags.allowHost],
          tools: [...(base?.grant.tools ?? [])],
          secrets: [...(base?.grant.secrets ?? []), ...flags.secret],
        });
        limits = resolveLimits({ memoryMb: flags.memoryMb, timeoutMs: flags.timeoutMs }, base?.limits);
      } catch (err) {
        cmd.error(`error: ${(err as Error).message}`);
      }
      const events: EgressEvent[] = [];
      let vault: Awaited<ReturnType<typeof openVault>> | undefined;
      let egress: Egress | undefined;
      if (grant.secrets?.length) {
        try {
          // Loaded only when asked for: opening the vault means opening the database.
          const { openVault: open } = await import('../vault/index.js');
          vault = await open(loadConfig());
          for (const name of grant.secrets) {
            if (!(await vault.source.get(name))) throw new UserError(`there is no secret named ${name} in the vault.`, `add it with \`bulwark secret add ${name} --host HOST --header 'Authorization: Bearer {value}'\`, or check \`bulwark secret list\``);
          }
        } catch (err) {
          await vault?.close();
          cmd.error(`error: ${(err as Error).message}${err instanceof UserError && err.fix ? `\n  fix: ${err.fix}` : ''}`);
        }
        egress = createVaultEgress(createPolicyEgress(), vault.source, { onEvent: (e) => events.push(e) });
      }
      const box = new Sandbox({ workers: 1, poolSize: 1, defaults: limits, egress });
      let result: RunResult;
      try {
        result = await box.run(code, { grant, limits });
      } finally {
        await box.close();
        await vault?.close();
      }
      process.stdout.write(flags.json ? `${JSON.stringify(events.length ? { ...result, egress: events } : result)}\n` : formatResult(result, events));
    });
}

/** A readable rendering of a run result for people at a terminal. */
export function formatResult(result: RunResult, egress: EgressEvent[] = []): string {
  const lines: string[] = [];
  if (result.ok) lines.push(`ok: ${JSON.stringify(result.value, null, 2)}`);
  else lines.push(`error (${result.error.kind}): ${result.error.message}`);
  if (result.logs.length) {
    lines.push('logs:');
    for (const line of result.logs) lines.push(`  ${line}`);
  }
  if (egress.length) {
    lines.push('egress:');
    for (const e of egress) {
      const what = e.kind === 'request' ? `${e.status ?? 'failed'}` : e.kind.replace('_', ' ');
      lines.push(`  ${e.method} ${e.host} ${what}${e.secrets.length ? ` [${e.secrets.join(', ')}]` : ''}${e.reason && e.kind !== 'request' ? `: ${e.reason}` : ''}`);
    }
  }
  const s = result.stats;
  lines.push(`stats: ${s.durationMs.toFixed(1)} ms, ${s.hostCalls} host calls, ${s.outputBytes} bytes of output, ${(s.memoryBytes / 1048576).toFixed(1)} MiB heap`);
  return `${lines.join('\n')}\n`;
}
