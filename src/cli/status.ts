import type { Command } from 'commander';
import { config, fail, hubClient, hubFetch } from './common.js';

export function registerStatus(program: Command): void {
  program.command('status')
    .description('show whether the hub is running and ready: Redis, database, channels, queues, model')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const loaded = config();
      try {
        const r = await hubFetch(loaded, '/api/status');
        const body = (await r.json()) as { checks: Array<{ name: string; ok: boolean; detail?: string }>; [k: string]: unknown };
        if (!r.ok) throw new Error(`status request failed: ${(body as { error?: string }).error ?? r.status}`);
        if (opts.json) { process.stdout.write(JSON.stringify(body, null, 2) + '\n'); return; }
        const ready = body.checks.every((c) => c.ok);
        const q = body.queues as { inbound: Record<string, number>; outbound: Record<string, number> };
        const lines = [
          `hub: ${ready ? 'ready' : 'NOT ready'} (role ${String(body.role)}, up ${String(body.uptimeSeconds)}s)`,
          ...body.checks.map((c) => `  ${c.ok ? 'ok  ' : 'FAIL'} ${c.name}${c.detail ? ` — ${c.detail}` : ''}`),
          `model: ${String(body.llm)}`,
          `queues: inbound waiting ${q.inbound.waiting ?? 0}, active ${q.inbound.active ?? 0}, delayed ${q.inbound.delayed ?? 0}, failed ${q.inbound.failed ?? 0}; outbound waiting ${q.outbound.waiting ?? 0}, failed ${q.outbound.failed ?? 0}`,
          `stored: ${JSON.stringify(body.stored)}`,
        ];
        process.stdout.write(lines.join('\n') + '\n');
        if (!ready) process.exitCode = 1;
      } catch (err) {
        fail(err);
      }
    });
}

export function registerLogin(program: Command): void {
  program.command('login')
    .description('print a new one-time login link for the web chat')
    .action(async () => {
      const loaded = config();
      try {
        const r = await hubFetch(loaded, '/api/login-links', { method: 'POST', body: '{}' });
        const body = (await r.json()) as { path?: string; error?: string };
        if (!r.ok || !body.path) throw new Error(body.error ?? `HTTP ${r.status}`);
        const { base } = hubClient(loaded);
        process.stdout.write(`${base}${body.path}\n(valid once, for 10 minutes)\n`);
      } catch (err) {
        fail(err);
      }
    });
}
