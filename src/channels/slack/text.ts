/*
 * Inbound Slack markup → the plain text the agent sees. Slack escapes &, < and > and wraps
 * references in angle brackets: <@U123>, <@U123|name>, <#C123|general>, <!here>, <https://x|label>.
 * (Outbound Markdown → mrkdwn is the shared converter's job.)
 */

const REF = /<([^<>]+)>/g;

function unescapeEntities(s: string): string {
  return s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

/** Whether the text @-mentions this bot user. Broadcasts (<!channel>, <!here>, <!everyone>) are not mentions. */
export function mentionsUser(text: string, userId: string): boolean {
  for (const m of text.matchAll(REF)) {
    const inner = m[1]!;
    if (inner === `@${userId}` || inner.startsWith(`@${userId}|`)) return true;
  }
  return false;
}

/** Slack markup to readable text; a leading mention of the bot itself is dropped ("@bulwark what's up" → "what's up"). */
export function slackToText(text: string, botUserId: string): string {
  const withoutLead = text.replace(new RegExp(`^\\s*<@${botUserId}(\\|[^>]*)?>[\\s:,]*`), '');
  const converted = withoutLead.replace(REF, (_all, inner: string) => {
    const [target, label] = splitOnce(inner, '|');
    if (target.startsWith('@')) return label ? `@${label}` : target;
    if (target.startsWith('#')) return label ? `#${label}` : target;
    if (target.startsWith('!')) {
      if (target.startsWith('!subteam^')) return label ?? '@group';
      // <!here>, <!channel>, <!everyone>, <!date^…|fallback>: keep them readable but inert.
      return label ?? `@${target.slice(1).split('^')[0]}`;
    }
    if (/^(https?|mailto):/i.test(target)) return label && label !== target ? `${label} (${target})` : target;
    return inner;
  });
  return unescapeEntities(converted).trim();
}

function splitOnce(s: string, sep: string): [string, string | undefined] {
  const i = s.indexOf(sep);
  return i < 0 ? [s, undefined] : [s.slice(0, i), s.slice(i + 1)];
}
