import { AttachmentRefused, fetchCapped } from '../attachments.js';
import { onAllowedHost, type InboundFile } from '../inbound-files.js';
import type { IncomingMessage } from './types.js';

/*
 * Discord attachments are signed CDN links that need no token (none is ever sent). Only Discord's
 * own CDN hosts are fetched, so a message cannot make the hub request an arbitrary address.
 */

export const DISCORD_FILE_HOSTS = ['cdn.discordapp.com', 'media.discordapp.net'] as const;

/** `apiUrl` is the configured api_url (a stand-in's origin counts as Discord's CDN). */
export function discordFiles(attachments: IncomingMessage['attachments'], apiUrl?: string): InboundFile[] {
  return attachments.map((a) => ({
    name: a.name,
    size: a.size,
    async download() {
      if (!onAllowedHost(a.url, DISCORD_FILE_HOSTS, apiUrl)) throw new AttachmentRefused('its link is not on Discord\'s CDN');
      return fetchCapped(a.url);
    },
  }));
}
