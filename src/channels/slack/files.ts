import { AttachmentRefused, fetchCapped } from '../attachments.js';
import { onAllowedHost, type InboundFile } from '../inbound-files.js';
import type { SlackFile } from './types.js';

/*
 * Slack files are private: url_private(_download) needs the bot token (scope files:read) as a Bearer
 * header. The token goes to Slack's file host only — never to a URL elsewhere, whatever an event
 * says — and redirects are refused (fetchCapped), so the header cannot follow one to another host.
 */

export const SLACK_FILE_HOSTS = ['files.slack.com'] as const;

/** Without files:read Slack answers with its sign-in page (HTTP 200), not with an error. */
const looksLikeHtml = (b: Buffer) => /^\s*<(!doctype html|html)[\s>]/i.test(b.subarray(0, 64).toString('latin1'));

/** The message's files as InboundFiles. `apiUrl` is the configured api_url (a stand-in's origin counts as Slack's). */
export function slackFiles(files: SlackFile[], token: string, apiUrl?: string): InboundFile[] {
  return files.map((f) => {
    const name = f.name ?? f.title;
    return {
      name,
      size: f.size,
      async download() {
        const url = f.url_private_download ?? f.url_private;
        if (!url) throw new AttachmentRefused('Slack did not share a download link for it');
        if (!onAllowedHost(url, SLACK_FILE_HOSTS, apiUrl)) throw new AttachmentRefused('its link is not on Slack\'s file host');
        const bytes = await fetchCapped(url, undefined, undefined, { authorization: `Bearer ${token}` });
        if (looksLikeHtml(bytes) && f.mimetype !== 'text/html') throw new AttachmentRefused('Slack sent a sign-in page instead of the file (the app needs the files:read scope)');
        return bytes;
      },
    };
  });
}
