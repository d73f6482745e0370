import type { Command } from 'commander';
import { UserError } from '../errors.js';
import { config, fail, hubFetch } from './common.js';

interface Pending { code: string; channel: string; senderId: string; senderName?: string; createdAt: number; expiresAt: number }

async function call<T>(path: string, init: RequestInit = {}): Promise<T> {
  const r = await hubFetch(config(), path, init);
  const body = (await r.json()) as T & { error?: string };
  if (!r.ok) throw new UserError(body.error ?? `the hub answered ${r.status}`);
  return body;
}

/** `bulwark pairing list|approve|deny|approved|revoke`: who may talk to the bot. */
export function registerPairing(program: Command): void {
  const pairing = program.command('pairing').description('approve or deny people who asked to talk to the bot (pairing codes)');

  pairing.command('list')
    .description('pending pairing requests')
    .option('--channel <name>', 'only this channel')
    .option('--json', 'print JSON')
    .action(async (opts: { channel?: string; json?: boolean }) => {
      try {
        const { pending } = await call<{ pending: Pending[] }>(`/api/pairing${opts.channel ? `?channel=${encodeURIComponent(opts.channel)}` : ''}`);
        if (opts.json) { process.stdout.write(JSON.stringify(pending, null, 2) + '\n'); return; }
        if (pending.length === 0) { process.stdout.write('no pending pairing requests\n'); return; }
        for (const p of pending) {
          const mins = Math.max(0, Math.round((p.expiresAt - Date.now()) / 60_000));
          process.stdout.write(`${p.code}  ${p.channel.padEnd(8)} ${p.senderName ? `${JSON.stringify(p.senderName)} ` : ''}(id ${p.senderId})  expires in ${mins} min\n`);
        }
      } catch (err) {
        fail(err);
      }
    });

  for (const action of ['approve', 'deny'] as const) {
    pairing.command(`${action} <code>`)
      .description(action === 'approve' ? 'let the sender of this code talk to the bot on that channel' : 'reject this pairing request')
      .action(async (code: string) => {
        try {
          const r = await call<Record<string, { channel: string; senderId: string; senderName: string | null }>>(`/api/pairing/${action}`, { method: 'POST', body: JSON.stringify({ code }) });
          const p = Object.values(r)[0]!;
          process.stdout.write(`${action === 'approve' ? 'approved' : 'denied'}: ${p.senderName ? `${JSON.stringify(p.senderName)} ` : ''}(id ${p.senderId}) on ${p.channel}\n`);
        } catch (err) {
          fail(err);
        }
      });
  }

  pairing.command('approved <channel>')
    .description('senders approved by pairing on a channel')
    .action(async (channel: string) => {
      try {
        const r = await call<{ senders: string[] }>(`/api/pairing/approved?channel=${encodeURIComponent(channel)}`);
        process.stdout.write(r.senders.length ? `${r.senders.join('\n')}\n` : 'none\n');
      } catch (err) {
        fail(err);
      }
    });

  pairing.command('revoke <channel> <senderId>')
    .description('remove an approval (the sender gets a pairing prompt again)')
    .action(async (channel: string, senderId: string) => {
      try {
        const r = await call<{ revoked: boolean }>('/api/pairing/revoke', { method: 'POST', body: JSON.stringify({ channel, senderId }) });
        process.stdout.write(r.revoked ? `revoked ${senderId} on ${channel}\n` : `${senderId} was not approved on ${channel}\n`);
      } catch (err) {
        fail(err);
      }
    });
}
