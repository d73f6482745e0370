import qrcode from 'qrcode-terminal';
import type { Command } from 'commander';
import { z } from 'zod';
import { chromiumPath, createWhatsAppClient, markLinked, sessionDir } from '../channels/whatsapp/client.js';
import { UserError } from '../errors.js';
import { config } from './common.js';

/*
 * `bulwark channels login whatsapp`: links Bulwark as a device of a WhatsApp account, once. Shows the
 * QR code in the terminal (or, with --phone, a pairing code to type on the phone), waits until the
 * phone confirms, and leaves the session in <data dir>/whatsapp (mode 0700) for `bulwark start`.
 */

const phoneSchema = z.string().trim().transform((s) => s.replace(/[\s()+-]/g, '')).pipe(z.string().regex(/^\d{7,15}$/, 'the phone number in international format, digits only, e.g. 4915112345678'));

export interface LinkOptions {
  home: string;
  chromium?: string | undefined;
  phone?: string | undefined;
  out: NodeJS.WritableStream;
  /** How long to wait for the phone (QR codes refresh about every 20 s). */
  timeoutMs?: number;
}

/** Runs the link flow; resolves with the linked number once WhatsApp reports the session ready. */
export async function linkWhatsApp(o: LinkOptions): Promise<string> {
  const phone = o.phone === undefined ? undefined : phoneSchema.parse(o.phone);
  const dir = sessionDir(o.home);
  const client = createWhatsAppClient({ home: o.home, chromium: o.chromium, pairWithPhone: phone, qrMaxRetries: 6 });
  const say = (s: string) => o.out.write(`${s}\n`);
  say(`Starting WhatsApp Web in Chromium (${chromiumPath(o.chromium)}); the session will be stored in ${dir}.`);
  return new Promise<string>((resolve, reject) => {
    let done = false;
    const finish = (err: Error | undefined, linked?: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      // The browser is closed either way; `bulwark start` opens the stored session again.
      void client.destroy().catch(() => undefined).then(() => (err ? reject(err) : resolve(linked!)));
    };
    const timer = setTimeout(() => finish(new UserError('the phone did not link in time.', 'run the command again and scan the code within a minute')), o.timeoutMs ?? 180_000);
    timer.unref();
    client.on('qr', (qr: string) => {
      say('\nOn the phone: WhatsApp → Settings → Linked devices → Link a device, then scan:\n');
      qrcode.generate(qr, { small: true }, (art) => say(art));
    });
    client.on('code', (code: string) => {
      say(`\nOn the phone: WhatsApp → Settings → Linked devices → Link a device → Link with phone number instead, and enter:\n\n    ${code}\n`);
    });
    client.on('authenticated', () => say('Linked; loading chats…'));
    client.on('auth_failure', (msg: unknown) => finish(new UserError(`WhatsApp refused the link: ${String(msg)}`, 'run the command again')));
    client.on('disconnected', (reason: unknown) => finish(new UserError(`WhatsApp closed the session (${String(reason)}).`, 'run the command again')));
    client.on('ready', () => {
      const wid = client.info?.wid?._serialized ?? '';
      const number = wid.split('@')[0] ?? '';
      markLinked(o.home, number);
      say(`WhatsApp is linked${number ? ` as +${number}` : ''}. Enable the channel ([channels.whatsapp] enabled = true, or \`bulwark channels enable whatsapp\`) and start the hub.`);
      finish(undefined, number);
    });
    client.initialize().catch((err: Error) => finish(new UserError(
      `WhatsApp Web did not start: ${err.message}`,
      'check that Chromium is installed (apt-get install chromium) or set chromium_path under [channels.whatsapp] in bulwark.toml; WhatsApp Web also needs internet access',
    )));
  });
}

/** Adds `login <platform>` under the `channels` command (creating `channels` if nobody else has). */
export function registerWhatsAppLogin(program: Command): void {
  const channels = program.commands.find((c) => c.name() === 'channels') ?? program.command('channels').description('chat channels');
  channels.command('login')
    .description('link a channel that needs an interactive login (whatsapp: QR code or pairing code)')
    .argument('<platform>', 'whatsapp')
    .option('--phone <number>', 'link with a pairing code for this phone number (international format) instead of a QR code')
    .action(async (platform: string, opts: { phone?: string }) => {
      if (platform !== 'whatsapp') throw new UserError(`\`channels login\` is only needed for whatsapp, not "${platform}".`, 'Telegram, Slack and Discord use tokens: `bulwark secret add <name>` (see README)');
      const loaded = config();
      await linkWhatsApp({ home: loaded.home, chromium: loaded.config.channels.whatsapp.chromium_path, phone: opts.phone, out: process.stdout });
      process.exit(0);
    });
}
