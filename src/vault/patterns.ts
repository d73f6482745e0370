/*
 * Well-known credential formats, found whether or not the secret is in the vault: a key the owner
 * pasted into a chat, or one the model found in a file, must not leave either.
 */

export interface PatternHit {
  pattern: string;
  start: number;
  end: number;
}

interface Rule {
  name: string;
  re: RegExp;
  /** Which capture group is the credential (0 = the whole match). */
  group?: number;
  /** Extra check on the credential, for formats loose enough to match ordinary identifiers. */
  check?: (token: string) => boolean;
}

/** A real key mixes letters and digits; "sk-some-long-css-class-name" does not. */
const mixed = (t: string): boolean => /[0-9]/.test(t) && /[A-Za-z]/.test(t.slice(3));

const TAIL = '(?![A-Za-z0-9_-])';

const RULES: Rule[] = [
  { name: 'anthropic-key', re: new RegExp(`\\bsk-ant-[A-Za-z0-9_-]{20,}${TAIL}`, 'g'), check: mixed },
  { name: 'openai-key', re: new RegExp(`\\bsk-(?!ant-)(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}${TAIL}`, 'g'), check: mixed },
  { name: 'github-token', re: new RegExp(`\\bgh[pousr]_[A-Za-z0-9]{36,}${TAIL}`, 'g') },
  { name: 'github-pat', re: new RegExp(`\\bgithub_pat_[A-Za-z0-9_]{22,}${TAIL}`, 'g') },
  { name: 'slack-token', re: new RegExp(`\\bxox[abposr]-[A-Za-z0-9-]{10,}${TAIL}`, 'g'), check: mixed },
  { name: 'slack-app-token', re: new RegExp(`\\bxapp-[0-9]+-[A-Za-z0-9-]{10,}${TAIL}`, 'g') },
  { name: 'telegram-bot-token', re: new RegExp(`(?<![0-9])[0-9]{8,10}:[A-Za-z0-9_-]{35}${TAIL}`, 'g') },
  { name: 'aws-access-key', re: /\b(?:AKIA|ASIA)[A-Z0-9]{16}\b/g },
  { name: 'google-api-key', re: new RegExp(`\\bAIza[0-9A-Za-z_-]{35}${TAIL}`, 'g') },
  { name: 'stripe-key', re: new RegExp(`\\b(?:sk|rk)_live_[0-9A-Za-z]{16,}${TAIL}`, 'g') },
  { name: 'jwt', re: /\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*/g },
  { name: 'bearer-token', re: /\bAuthorization[ \t]*:[ \t]*Bearer[ \t]+([A-Za-z0-9._~+/=-]{8,})/gi, group: 1 },
];

const PRIVATE_KEY_BEGIN = /-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----/g;
const PRIVATE_KEY_END = /-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----/g;

/** Every credential-format match in `text`, in no particular order. */
export function scanPatterns(text: string): PatternHit[] {
  const hits: PatternHit[] = [];
  for (const rule of RULES) {
    rule.re.lastIndex = 0;
    for (let m = rule.re.exec(text); m; m = rule.re.exec(text)) {
      const token = m[rule.group ?? 0] ?? m[0];
      if (rule.check && !rule.check(token)) continue;
      const start = m.index + m[0].length - token.length;
      hits.push({ pattern: rule.name, start, end: start + token.length });
    }
  }
  // A private key block runs to its END line; a block cut off before it runs to the end of the text.
  PRIVATE_KEY_BEGIN.lastIndex = 0;
  for (let m = PRIVATE_KEY_BEGIN.exec(text); m; m = PRIVATE_KEY_BEGIN.exec(text)) {
    PRIVATE_KEY_END.lastIndex = m.index + m[0].length;
    const end = PRIVATE_KEY_END.exec(text);
    const stop = end ? end.index + end[0].length : text.length;
    hits.push({ pattern: 'private-key', start: m.index, end: stop });
    PRIVATE_KEY_BEGIN.lastIndex = stop;
  }
  return hits;
}
