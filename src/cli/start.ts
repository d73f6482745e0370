import type { Command } from 'commander';
import { startHub, ROLES, type Role } from '../hub.js';
import { createLogger } from '../logger.js';
import { config, fail } from './common.js';

export function registerStart(program: Command): void {
  program.command('start')
    .description('start the hub (embedded Redis and SQLite unless REDIS_URL / DATABASE_URL are set)')
    .option('--role <role>', `which part to run: ${ROLES.join('|')}`, 'all')
    .action(async (opts: { role: string }) => {
      if (!(ROLES as readonly string[]).includes(opts.role)) fail(new Error(`unknown role "${opts.role}": use one of ${ROLES.join(', ')}`));
      // Everything the hub writes (database, Redis files, tokens) is for this user only.
      process.umask(0o077);
      const loaded = config();
      const logger = createLogger({ level: loaded.config.log.level });
      let hub;
      try {
        hub = await startHub({ loaded, role: opts.role as Role, logger });
      } catch (err) {
        fail(err);
      }
      const lines = [`Bulwark is running (${hub.role}) at ${hub.url}`];
      if (hub.loginUrl) lines.push(`Web chat — open this one-time login link: ${hub.loginUrl}`, 'Terminal chat: bulwark chat   ·   status: bulwark status   ·   stop: Ctrl+C');
      process.stdout.write(lines.join('\n') + '\n');
      let stopping = false;
      const stop = (signal: string) => {
        if (stopping) { process.stderr.write('bulwark: second signal, exiting now\n'); process.exit(130); }
        stopping = true;
        logger.info({ signal }, 'stopping: no new jobs, finishing in-flight turns');
        hub!.close().then(() => { logger.info('stopped'); process.exit(0); }, (err) => { logger.error({ err: (err as Error).message }, 'error while stopping'); process.exit(1); });
      };
      process.on('SIGTERM', () => stop('SIGTERM'));
      process.on('SIGINT', () => stop('SIGINT'));
    });
}
