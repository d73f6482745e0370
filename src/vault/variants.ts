/*
 * The encoded forms of a secret that the leak detector looks for literally. They are computed once,
 * when the detector is built, so a scan costs one pass of the automaton whatever the encodings.
 *
 * Encodings that can be applied to only part of a secret (percent-encoding) or mixed with the text
 * (separators between characters) are not enumerated here: the detector undoes them on a view of
 * the text instead (see views.ts).
 */

export interface Variant {
  /** The literal to find in the text. */
  text: string;
  /** How the secret was encoded to give `text` ('raw' for the secret itself). */
  encoding: string;
}

/** The characters that survive in the "separators stripped" view: letters and digits. */
export function skeleton(s: string): string {
  return s.replace(/[^A-Za-z0-9]/g, '');
}

/** Shifts ASCII letters by `n` places, keeping case; everything else is unchanged. */
export function caesar(s: string, n: number): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 65 && c <= 90) out += String.fromCharCode(65 + ((c - 65 + n) % 26));
    else if (c >= 97 && c <= 122) out += String.fromCharCode(97 + ((c - 97 + n) % 26));
    else out += s[i];
  }
  return out;
}

/**
 * The base64 characters that depend only on the secret's bytes when it sits `offset` (0, 1 or 2)
 * bytes into a longer base64 stream: characters that mix in neighbouring bytes are dropped, so the
 * core matches whatever surrounds the secret.
 */
export function base64Core(bytes: Buffer, offset: number): string {
  const enc = Buffer.concat([Buffer.alloc(offset), bytes]).toString('base64').replace(/=+$/, '');
  const first = Math.ceil((offset * 8) / 6);
  const last = Math.floor(((offset + bytes.length) * 8) / 6);
  return enc.slice(first, last);
}

/** Every literal variant of `secret`, deduplicated (a secret with no letters has no Caesar forms). */
export function secretVariants(secret: string): Variant[] {
  const bytes = Buffer.from(secret, 'utf8');
  const out: Variant[] = [{ text: secret, encoding: 'raw' }];
  out.push({ text: [...secret].reverse().join(''), encoding: 'reversed' });
  const hex = bytes.toString('hex');
  out.push({ text: hex, encoding: 'hex' }, { text: hex.toUpperCase(), encoding: 'hex' });
  for (let offset = 0; offset < 3; offset++) {
    const core = base64Core(bytes, offset);
    out.push({ text: core, encoding: `base64@${offset}` });
    out.push({ text: core.replace(/\+/g, '-').replace(/\//g, '_'), encoding: `base64url@${offset}` });
  }
  for (let n = 1; n < 26; n++) out.push({ text: caesar(secret, n), encoding: n === 13 ? 'rot13' : `caesar+${n}` });
  const seen = new Set<string>();
  return out.filter((v) => {
    // Too-short cores would match by chance; the same literal twice would report twice.
    if (v.text.length < 8 || seen.has(v.text)) return false;
    seen.add(v.text);
    return true;
  });
}

/**
 * The n-gram length used to find the pieces of a split secret: long enough that random text rarely
 * holds one, short enough that a piece of a third of the secret contains one.
 */
export function gramLength(secretLength: number): number {
  return Math.max(4, Math.min(6, Math.floor(secretLength / 3)));
}
