import type { Command } from 'commander';
import { CHAT_CHANNELS, isEnabled, readOverrides, writeOverride } from '../channels/registry.js';
import { UserError } from '../errors.js';
import { config, fail, hubFetch } from './common.js';

interface ChannelRow { name: string; enabled: boolean; configured: boolean; override: boolean | null; status: { state: string; detail?: string } }

function channelName(name: string): (typeof CHAT_CHANNELS)[number] {
  const n = name.toLowerCase();
  if (!(CHAT_CHANNELS as readonly string[]).includes(n)) throw new UserError(`unknown channel "${name}".`, `use one of: ${CHAT_CHANNELS.join(', ')}`);
  return n as (typeof CHAT_CHANNELS)[number];
}

async function json<T>(r: Response): Promise<T> {
  const body = (await r.json()) as T & { error?: string };
  if (!r.ok) throw new UserError(`the hub answered ${r.status}: ${body.error ?? 'unknown error'}`);
  return body;
}

/** `bulwark channels list|enable|disable|test`. */
export function registerChannels(program: Command): void {
  const channels = program.commands.find((c) => c.name() === 'channels') ?? program.command('channels');
  channels.description('chat channels (Telegram, Slack, Discord, WhatsApp): status, enable/disable, connection test');

  channels.command('list')
    .description('configured channels and their live connection state')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const loaded = config();
      try {
        let rows: ChannelRow[];
        let live = true;
        try {
          rows = (await json<{ channels: ChannelRow[] }>(await hubFetch(loaded, '/api/channels'))).channels;
        } catch (err) {
          if (!(err instanceof UserError) || !/not reachable/.test(err.message)) throw err;
          live = false;
          const overrides = readOverrides(loaded.home);
          const deps = { channels: loaded.config.channels, home: loaded.home };
          rows = CHAT_CHANNELS.map((name) => ({ name, enabled: isEnabled(deps, name), configured: loaded.config.channels[name].enabled, override: overrides[name] ?? null, status: { state: 'unknown', detail: 'the hub is not running' } }));
        }
        if (opts.json) { process.stdout.write(JSON.stringify({ live, channels: rows }, null, 2) + '\n'); return; }
        for (const r of rows) {
          const how = r.override === null ? '' : ` (override: ${r.override ? 'enabled' : 'disabled'} by \`bulwark channels ${r.override ? 'enable' : 'disable'}\`)`;
          process.stdout.write(`${r.name.padEnd(9)} ${r.enabled ? 'enabled ' : 'disabled'}  ${r.status.state}${r.status.detail ? ` — ${r.status.detail}` : ''}${how}\n`);
        }
        if (!live) process.stdout.write('(the hub is not running: states are unknown; start it with `bulwark start`)\n');
      } catch (err) {
        fail(err);
      }
    });

  for (const enable of [true, false]) {
    channels.command(`${enable ? 'enable' : 'disable'} <name>`)
      .description(`${enable ? 'turn a channel on' : 'turn a channel off'} (written to $BULWARK_HOME/channels.json; takes effect at the next hub start)`)
      .action((name: string) => {
        const loaded = config();
        try {
          const n = channelName(name);
          writeOverride(loaded.home, n, enable);
          process.stdout.write(`${n} ${enable ? 'enabled' : 'disabled'}. Restart the hub to apply it (stop it, then \`bulwark start\`).\n`);
          if (enable) process.stdout.write(`Its token must be in the vault: \`bulwark secret add ${n === 'telegram' ? 'telegram.token' : n === 'slack' ? 'slack.bot_token' : n === 'discord' ? 'discord.token' : '…'}\`${n === 'whatsapp' ? ' (WhatsApp: `bulwark channels login whatsapp`)' : ''}.\n`);
        } catch (err) {
          fail(err);
        }
      });
  }

  channels.command('test <name>')
    .description("check the channel's token and connection with the platform (Telegram getMe, Slack auth.test, …)")
    .action(async (name: string) => {
      const loaded = config();
      try {
        const n = channelName(name);
        const r = await json<{ ok: boolean; detail: string }>(await hubFetch(loaded, `/api/channels/${n}/test`, { method: 'POST', body: '{}' }));
        process.stdout.write(`${n}: ${r.ok ? 'ok' : 'FAILED'} — ${r.detail}\n`);
        if (!r.ok) process.exitCode = 1;
      } catch (err) {
        fail(err);
      }
    });
}
