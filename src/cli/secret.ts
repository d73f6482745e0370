import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { UserError } from '../errors.js';
import { openVault } from '../vault/index.js';
import { generateKey, NEW_MASTER_KEY_ENV, parseKey, pendingKeyFilePath, promotePendingKey, writeKeyFile } from '../vault/master-key.js';
import { isChannelSecret, type SecretPolicy } from '../vault/policy.js';
import { config, hubClient } from './common.js';
import { readStdin } from './stdin.js';

/*
 * `bulwark secret add|list|rm|rotate-master`. A secret's value is read from stdin (piped) or typed
 * at a prompt that does not echo — never from argv, where it would land in shell history and `ps`.
 */


/** Reads a line from the terminal without echoing it. */
function readHidden(prompt: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const stdin = process.stdin;
    process.stderr.write(prompt);
    stdin.setRawMode(true);
    stdin.resume();
    let value = '';
    const done = (err?: Error) => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off('data', onData);
      process.stderr.write('\n');
      if (err) reject(err); else resolve(value);
    };
    const onData = (buf: Buffer) => {
      for (const ch of buf.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done();
        if (ch === '\u0003') return done(new UserError('cancelled.'));
        if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
        else if (ch >= ' ') value += ch;
      }
    };
    stdin.on('data', onData);
  });
}

async function readValue(name: string): Promise<string> {
  // `echo VALUE | bulwark secret add` adds a newline that is not part of the value.
  return process.stdin.isTTY ? readHidden(`value of ${name} (not shown): `) : (await readStdin()).replace(/\r?\n$/, '');
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

function describePolicy(p: SecretPolicy): string {
  if (p.hosts.length === 0) return 'channel credential: used by the hub, never by the agent';
  const where = [...p.headers.map((h) => `header "${h}"`), ...p.query.map((q) => `query ?${q}=`), ...(p.body ? ['body'] : [])];
  return `hosts ${p.hosts.join(', ')}; ${where.join(', ')}; methods ${p.methods.join(', ')}`;
}

async function withVault<T>(fn: (v: Awaited<ReturnType<typeof openVault>>) => Promise<T>): Promise<T> {
  const opened = await openVault(config());
  try {
    return await fn(opened);
  } finally {
    await opened.close();
  }
}

/** A rotation re-encrypts rows a running hub holds keys for: it must run with the hub stopped. */
async function refuseWhileHubRuns(): Promise<void> {
  const loaded = config();
  let base: string;
  try {
    base = hubClient(loaded).base;
  } catch {
    return; // no API token yet: no hub has ever run here
  }
  const answered = await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(1500) }).then(() => true, () => false);
  if (answered) throw new UserError(`a hub is running at ${base}.`, 'stop it first (rotation re-encrypts what it holds keys for), then run rotate-master again');
}

export function registerSecret(program: Command): void {
  const secret = program.command('secret').description('the encrypted credential vault: the model only ever sees {{secret:NAME}} handles');

  secret
    .command('add')
    .description('store a secret; its value is read from stdin, or typed at a prompt without echo')
    .argument('<name>', 'e.g. GITHUB_TOKEN or telegram.token')
    .option('--host <host>', 'a destination it may be sent to (repeatable): api.github.com, host:port, *.example.com, http://127.0.0.1:PORT', collect)
    .option('--header <template>', "a header it may be placed in (repeatable), e.g. 'Authorization: Bearer {value}'", collect)
    .option('--query <param>', 'a query parameter it may be placed in (repeatable)', collect)
    .option('--body', 'it may be placed in the request body')
    .option('--method <method>', 'an HTTP method it may be sent with (repeatable; default GET and POST)', collect)
    .option('--replace', 'replace an existing secret of that name')
    .action(async (name: string, opts: { host?: string[]; header?: string[]; query?: string[]; body?: boolean; method?: string[]; replace?: boolean }) => {
      if (!opts.host?.length && !isChannelSecret(name)) throw new UserError(`say where ${name} may be sent.`, `add --host HOST (e.g. --host api.github.com --header 'Authorization: Bearer {value}')`);
      const policy = {
        hosts: opts.host ?? [],
        headers: opts.header ?? [],
        query: opts.query ?? [],
        body: opts.body ?? false,
        ...(opts.method ? { methods: opts.method.map((m) => m.toUpperCase()) } : {}),
      };
      const value = await readValue(name);
      await withVault(({ vault }) => vault.add(name, value, policy, { replace: opts.replace ?? false }));
      process.stdout.write(`stored ${name} (the model sees it only as {{secret:${name}}})\n`);
    });

  secret
    .command('list')
    .description('names and policies (never values)')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const list = await withVault(({ vault }) => vault.list());
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(list.map((s) => ({ name: s.name, policy: s.policy, createdAt: s.createdAt, updatedAt: s.updatedAt })))}\n`);
        return;
      }
      if (list.length === 0) {
        process.stdout.write('the vault is empty (add one with `bulwark secret add NAME --host HOST --header ...`)\n');
        return;
      }
      for (const s of list) process.stdout.write(`${s.name}\t${describePolicy(s.policy)}\n`);
    });

  secret
    .command('rm')
    .description('remove a secret')
    .argument('<name>')
    .action(async (name: string) => {
      const removed = await withVault(({ vault }) => vault.remove(name));
      if (!removed) throw new UserError(`no secret named ${name}.`, 'see `bulwark secret list`');
      process.stdout.write(`removed ${name}\n`);
    });

  secret
    .command('rotate-master')
    .description('re-encrypt every secret and conversation key under a new master key (stop the hub first)')
    .action(async () => {
      await refuseWhileHubRuns();
      const loaded = config();
      await withVault(async ({ vault }) => {
        const fromEnv = process.env.BULWARK_MASTER_KEY;
        if (fromEnv) {
          const nextText = process.env[NEW_MASTER_KEY_ENV];
          if (!nextText) throw new UserError('the master key comes from BULWARK_MASTER_KEY, so the new one must too.', `set ${NEW_MASTER_KEY_ENV} to a new key (openssl rand -base64 32) and run this again`);
          const counts = await vault.rotateMaster(parseKey(nextText, NEW_MASTER_KEY_ENV));
          process.stdout.write(`re-encrypted ${counts.secrets} secrets and ${counts.conversations} conversation keys.\nNow set BULWARK_MASTER_KEY to the value of ${NEW_MASTER_KEY_ENV} everywhere the hub runs; the old key no longer opens anything.\n`);
          return;
        }
        // The next key is on disk before the database changes, and replaces the old one after the
        // transaction commits: whenever this stops, the next start finds a key that opens the vault.
        const pending = pendingKeyFilePath(loaded.home);
        if (existsSync(pending)) throw new UserError(`${pending} exists: a previous rotation did not finish.`, 'start the hub (or run `bulwark secret list`) once: that finishes or undoes it; then rotate again');
        const next = generateKey();
        writeKeyFile(pending, next);
        const counts = await vault.rotateMaster(next);
        promotePendingKey(loaded.home);
        process.stdout.write(`re-encrypted ${counts.secrets} secrets and ${counts.conversations} conversation keys under a new master key in ${loaded.home}/master.key.\nBack it up now: copies of the old key no longer open anything.\n`);
      });
    });
}
