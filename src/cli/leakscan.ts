import { existsSync, readFileSync, statSync } from 'node:fs';
import type { Command } from 'commander';
import { UserError } from '../errors.js';
import { LeakDetector, type Finding, type SecretEntry } from '../vault/leak.js';
import { openVault } from '../vault/index.js';
import { keyFilePath, MASTER_KEY_ENV } from '../vault/master-key.js';
import { config } from './common.js';
import { readStdin } from './stdin.js';

/*
 * `bulwark leakscan`: runs the leak detector over stdin and prints the findings and the redacted
 * text. Until the vault lands, the secrets to look for come from --secret-file; once it lands, the
 * command will read the vault instead (the file stays useful for testing a detector by hand).
 */

/** Reads NAME=VALUE lines (blank lines and # comments skipped) from a file only its owner can read. */
export function readSecretFile(path: string): SecretEntry[] {
  let mode: number;
  try {
    mode = statSync(path).mode;
  } catch (err) {
    throw new UserError(`cannot read the secret file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}.`, 'pass an existing file of NAME=VALUE lines');
  }
  if ((mode & 0o077) !== 0) {
    throw new UserError(`the secret file ${path} can be read by other users (mode ${(mode & 0o777).toString(8).padStart(4, '0')}).`, `chmod 600 ${path}`);
  }
  const entries: SecretEntry[] = [];
  readFileSync(path, 'utf8').split(/\r?\n/).forEach((line, i) => {
    if (!line.trim() || line.trimStart().startsWith('#')) return;
    const eq = line.indexOf('=');
    // The line itself may hold a secret: name the line number, never echo its text.
    if (eq <= 0) throw new UserError(`${path}:${i + 1} is not a NAME=VALUE line.`, 'write one secret per line as NAME=VALUE');
    entries.push({ name: line.slice(0, eq).trim(), value: line.slice(eq + 1) });
  });
  return entries;
}

function describe(f: Finding): string {
  const what = f.kind === 'secret' ? `secret ${f.secret} (${f.encoding})` : `credential format ${f.pattern}`;
  return `  ${what} at ${f.start}–${f.end}`;
}

/** The vault's secrets, when this data directory has a vault (else only credential formats are looked for). */
async function vaultSecrets(): Promise<SecretEntry[]> {
  const loaded = config();
  if (!process.env[MASTER_KEY_ENV] && !existsSync(keyFilePath(loaded.home))) return [];
  const { source, close } = await openVault(loaded);
  try {
    return await source.entries();
  } finally {
    await close();
  }
}

export function registerLeakscan(program: Command): void {
  program
    .command('leakscan')
    .description('scan text on stdin for secrets (in any encoding) and credential formats; print findings and the redacted text')
    .option('--json', 'print {"findings": [...], "redacted": "..."} as JSON')
    .option('--secret-file <path>', 'NAME=VALUE lines to look for (mode 0600) instead of the vault')
    .action(async (opts: { json?: boolean; secretFile?: string }) => {
      const secrets = opts.secretFile ? readSecretFile(opts.secretFile) : await vaultSecrets();
      const detector = new LeakDetector(secrets);
      const { redacted, findings } = detector.redact(await readStdin());
      if (opts.json) {
        process.stdout.write(`${JSON.stringify({ findings, redacted })}\n`);
        return;
      }
      if (findings.length === 0) {
        process.stdout.write(`no leaks found (${secrets.length} secret${secrets.length === 1 ? '' : 's'} checked, plus credential formats)\n`);
        return;
      }
      process.stdout.write(`${findings.length} leak${findings.length === 1 ? '' : 's'} found:\n${findings.map(describe).join('\n')}\n\nredacted text:\n${redacted}${redacted.endsWith('\n') ? '' : '\n'}`);
    });
}
