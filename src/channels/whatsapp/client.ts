import { chmodSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client, type MessageMedia } from 'whatsapp-web.js';
import wweb from 'whatsapp-web.js';

/*
 * The whatsapp-web.js client as the adapter and `bulwark channels login whatsapp` build it: WhatsApp
 * Web in the system's Chromium (no browser download), the linked-device session kept under
 * <data dir>/whatsapp with mode 0700 (it is as good as the phone's login), no web-version cache
 * folder in the working directory.
 */

/** What the adapter needs of the client: small enough to drive the real Client offline in tests. */
export interface WhatsAppClient {
  on(event: string, listener: (...args: any[]) => void): unknown;
  initialize(): Promise<void>;
  /** Text, or a file as the library's MessageMedia (an image inline, anything else as a document). */
  sendMessage(chatId: string, content: string | MessageMedia, options?: { quotedMessageId?: string; linkPreview?: boolean; sendMediaAsDocument?: boolean; caption?: string }): Promise<{ id: { _serialized: string } } | null | undefined>;
  destroy(): Promise<void>;
  /** Set once the session is ready; `wid` is the linked number's id. */
  info?: { wid?: { _serialized?: string } | undefined; pushname?: string | undefined } | undefined;
}

export const SESSION_CLIENT_ID = 'bulwark';

/** <data dir>/whatsapp, created (or tightened) to 0700. */
export function sessionDir(home: string): string {
  const dir = join(home, 'whatsapp');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  return dir;
}

/*
 * whatsapp-web.js creates the browser profile before it knows whether linking will work, so the
 * profile's existence proves nothing: a marker written when the phone confirmed the link does.
 */
const linkedMarker = (home: string) => join(home, 'whatsapp', 'linked.json');

/** Whether `bulwark channels login whatsapp` completed (and the phone has not unlinked us since). */
export function hasSession(home: string): boolean {
  return existsSync(linkedMarker(home)) && existsSync(join(home, 'whatsapp', `session-${SESSION_CLIENT_ID}`));
}

export function markLinked(home: string, number: string): void {
  writeFileSync(linkedMarker(home), JSON.stringify({ number, linkedAt: new Date().toISOString() }) + '\n', { mode: 0o600 });
}

/** The phone unlinked the device: the next start must not pretend the session still works. */
export function markUnlinked(home: string): void {
  rmSync(linkedMarker(home), { force: true });
}

export function chromiumPath(configured?: string): string {
  return configured ?? process.env.BULWARK_CHROMIUM ?? '/usr/bin/chromium';
}

export interface ClientOptions {
  home: string;
  chromium?: string | undefined;
  /** Login with a pairing code instead of the QR code (digits with country code, no +). */
  pairWithPhone?: string | undefined;
  /** How many QR codes to show before giving up (login); 0 = forever. */
  qrMaxRetries?: number;
}

/** The real whatsapp-web.js Client; constructing it starts nothing (no browser until initialize()). */
export function createWhatsAppClient(o: ClientOptions): Client {
  const dataPath = sessionDir(o.home);
  // Chromium's own sandbox cannot start as root; elsewhere it stays on.
  const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  return new Client({
    authStrategy: new wweb.LocalAuth({ clientId: SESSION_CLIENT_ID, dataPath }),
    webVersionCache: { type: 'none' },
    puppeteer: { executablePath: chromiumPath(o.chromium), headless: true, args: asRoot ? ['--no-sandbox'] : [] },
    deviceName: 'Bulwark',
    qrMaxRetries: o.qrMaxRetries ?? 0,
    ...(o.pairWithPhone ? { pairWithPhoneNumber: { phoneNumber: o.pairWithPhone, showNotification: true, intervalMs: 180_000 } } : {}),
  });
}
