import { ATTACHMENT_MAX_BYTES, AttachmentRefused } from '../attachments.js';
import type { InboundFile } from '../inbound-files.js';
import type { WhatsAppIncoming } from './normalize.js';

/*
 * WhatsApp media is end-to-end encrypted: only WhatsApp Web in the browser can fetch and decrypt it,
 * so the download is the Message's own downloadMedia() (base64 out of the page). It cannot be capped
 * while streaming: the declared size is checked first (inbound-files.ts), the result again here.
 */

/** The slice of a whatsapp-web.js Message used here (tests stub it on a real Message). */
export interface MediaMessage {
  downloadMedia(): Promise<{ data?: unknown } | undefined>;
}

const MAX_BASE64 = Math.ceil(ATTACHMENT_MAX_BYTES / 3) * 4;

export function whatsappFiles(msg: MediaMessage, media: NonNullable<WhatsAppIncoming['media']>): InboundFile[] {
  return [{
    name: media.name,
    size: media.size,
    async download() {
      // Never an accepted kind, and large: refused without pulling it out of the browser.
      if (media.type === 'video') throw new AttachmentRefused('videos are not read, only images, PDFs and text files');
      const got = await msg.downloadMedia();
      if (!got || typeof got.data !== 'string') throw new AttachmentRefused('WhatsApp could not download it (it may no longer be on the phone)');
      if (got.data.length > MAX_BASE64) throw new AttachmentRefused(`larger than ${ATTACHMENT_MAX_BYTES / 1024 / 1024} MB`);
      return Buffer.from(got.data, 'base64');
    },
  }];
}
