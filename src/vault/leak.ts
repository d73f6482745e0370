import { UserError } from '../errors.js';
import { Automaton } from './automaton.js';
import { scanPatterns } from './patterns.js';
import { gramLength, secretVariants, skeleton } from './variants.js';
import { mapSpans, percentDecode, startBeforeAlnum } from './views.js';

/*
 * The leak detector: every outbound text (chat replies, LLM context, logs, sandbox output) passes
 * through `scan` or `redact` before it leaves. It finds the vault's secrets in any of the encodings a
 * tricked model might use to smuggle them out, and well-known credential formats whether or not they
 * are in the vault. What to do with a finding (block, redact, alert) is decided by the caller.
 *
 * One scan is: one Aho–Corasick pass over the text for every precomputed encoding of every secret
 * (plus short n-grams of each secret, for secrets split into pieces); one pass over a copy with
 * everything but letters and digits removed (separated characters); one pass over a percent-decoded
 * copy when the text holds a %XX escape; and the credential-format regular expressions.
 */

export interface Finding {
  kind: 'secret' | 'pattern';
  /** The secret's name. Never its value: findings end up in logs and audit records. */
  secret?: string;
  /** For kind 'pattern': which credential format (e.g. 'github-token'). */
  pattern?: string;
  /** How the secret was disguised: raw, hex, base64@1, rot13, url, separated, split, … */
  encoding?: string;
  /** The span of the scanned text, [start, end), that carries the leak. */
  start: number;
  end: number;
}

export interface SecretEntry {
  name: string;
  value: string;
}

export interface LeakDetectorOptions {
  /** Most characters allowed between the pieces of a split secret (default 16). */
  maxGap?: number;
}

/** Shorter secrets would match ordinary text too often to be worth guarding this way. */
export const MIN_SECRET_LENGTH = 8;

const BASE64_CHAR = /[A-Za-z0-9+/=_-]/;

type Ref = { secret: number; encoding: string } | { secret: number; gramOffset: number };

interface Piece {
  t0: number; // text offset of the piece's first character
  s0: number; // secret offset of the piece's first character
  s1: number; // secret offset just after the piece
}

/** Non-overlapping spans kept sorted, so an overlap test is a binary search (scans stay linear). */
class DisjointSpans {
  private readonly starts: number[] = [];
  private readonly ends: number[] = [];

  /** Adds [start, end) unless it overlaps a span already held; says whether it was added. */
  tryAdd(start: number, end: number): boolean {
    let lo = 0;
    let hi = this.ends.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.ends[mid]! <= start) lo = mid + 1;
      else hi = mid;
    }
    if (lo < this.starts.length && this.starts[lo]! < end) return false;
    this.starts.splice(lo, 0, start);
    this.ends.splice(lo, 0, end);
    return true;
  }
}

export class LeakDetector {
  private readonly names: string[];
  private readonly index: Map<string, number>;
  private readonly lengths: number[];
  private readonly grams: number[];
  private readonly maxGap: number;
  private readonly main: Automaton;
  private readonly mainRefs: Ref[][];
  private readonly stripped: Automaton;
  private readonly strippedRefs: number[][];
  /**
   * The longest stretch of text one leak of a known secret can cover: its longest encoding, or its
   * pieces with the largest gaps allowed between them. A text shown before its end is known (a
   * streamed draft) must hold back at least this much (plus separated characters, see drafts.ts).
   */
  readonly maxSpan: number;

  constructor(secrets: readonly SecretEntry[], opts: LeakDetectorOptions = {}) {
    this.maxGap = opts.maxGap ?? 16;
    const seenNames = new Set<string>();
    for (const s of secrets) {
      if (!s.name) throw new UserError('a secret has an empty name.', 'give every secret a name (NAME=VALUE)');
      if (seenNames.has(s.name)) throw new UserError(`the secret "${s.name}" is listed twice.`, 'keep one entry per name');
      seenNames.add(s.name);
      if (s.value.length < MIN_SECRET_LENGTH) {
        throw new UserError(
          `the secret "${s.name}" is ${s.value.length} characters long; the leak detector needs at least ${MIN_SECRET_LENGTH} (shorter values match ordinary text).`,
          `store the full credential for "${s.name}", or do not keep it in the vault`,
        );
      }
    }
    this.names = secrets.map((s) => s.name);
    this.index = new Map(this.names.map((n, i) => [n, i]));
    this.lengths = secrets.map((s) => s.value.length);
    this.grams = secrets.map((s) => gramLength(s.value.length));

    const main = new Map<string, Ref[]>();
    const add = <T>(map: Map<string, T[]>, key: string, ref: T): void => {
      const list = map.get(key);
      if (list) list.push(ref);
      else map.set(key, [ref]);
    };
    secrets.forEach((s, i) => {
      for (const v of secretVariants(s.value)) add(main, v.text, { secret: i, encoding: v.encoding });
      const k = this.grams[i]!;
      for (let o = 0; o + k <= s.value.length; o++) add(main, s.value.slice(o, o + k), { secret: i, gramOffset: o });
    });
    const stripped = new Map<string, number[]>();
    secrets.forEach((s, i) => {
      const sk = skeleton(s.value);
      if (sk.length >= MIN_SECRET_LENGTH) add(stripped, sk, i);
    });
    let span = 0;
    for (const [text, refs] of main) if (refs.some((r) => 'encoding' in r)) span = Math.max(span, text.length);
    secrets.forEach((s, i) => { span = Math.max(span, s.value.length + Math.ceil(s.value.length / this.grams[i]!) * this.maxGap); });
    this.maxSpan = span;
    this.main = new Automaton([...main.keys()]);
    this.mainRefs = [...main.values()];
    this.stripped = new Automaton([...stripped.keys()]);
    this.strippedRefs = [...stripped.values()];
  }

  /** Bytes held by the automata's tables (the precomputed encodings of every secret). */
  get tableBytes(): number {
    return this.main.bytes + this.stripped.bytes;
  }

  /** Every leak in `text`, ordered by position. */
  scan(text: string): Finding[] {
    const exact: Finding[] = [];
    const pieces: Piece[][] = this.names.map(() => []);
    const lens = this.main.lengths;

    this.main.search(text, (p, end) => {
      for (const ref of this.mainRefs[p]!) {
        if ('encoding' in ref) exact.push(this.finding(ref.secret, ref.encoding, end - lens[p]!, end));
        else this.addGram(pieces[ref.secret]!, end - lens[p]!, ref.gramOffset, lens[p]!);
      }
    });

    // Secrets hidden by percent-escapes (a decoded copy) and by separators (stepped over in the search).
    if (text.includes('%')) {
      const decoded = percentDecode(text);
      if (decoded.length !== text.length) {
        this.searchDecoded(text, decoded, exact);
      }
    }
    this.stripped.search(text, (p, end) => {
      const start = startBeforeAlnum(text, end, this.stripped.lengths[p]!);
      for (const secret of this.strippedRefs[p]!) exact.push(this.finding(secret, 'separated', start, end));
    }, true);

    // A secret found whole in one form is reported once; weaker forms of the same span are dropped.
    const kept: Finding[] = [];
    const taken = this.names.map(() => new DisjointSpans());
    const keep = (f: Finding, secret: number): void => {
      if (taken[secret]!.tryAdd(f.start, f.end)) kept.push(f);
    };
    const rank = (f: Finding): number => (f.encoding === 'separated' ? 2 : f.encoding?.startsWith('url') ? 1 : 0);
    exact.sort((a, b) => rank(a) - rank(b) || a.start - b.start);
    for (const f of exact) keep(f, this.index.get(f.secret!)!);
    pieces.forEach((list, i) => {
      for (const f of this.splitFindings(i, list)) keep(f, i);
    });
    for (const h of scanPatterns(text)) kept.push({ kind: 'pattern', pattern: h.pattern, start: h.start, end: h.end });
    return kept.sort((a, b) => a.start - b.start || a.end - b.end);
  }

  /** The text with every finding's span replaced by `[REDACTED:<secret or format name>]`. */
  redact(text: string): { redacted: string; findings: Finding[] } {
    const findings = this.scan(text);
    const spans: Array<{ start: number; end: number; labels: Set<string> }> = [];
    for (const f of findings) {
      const label = f.secret ?? f.pattern ?? 'secret';
      let { start, end } = f;
      // A base64 finding is the part that depends on the secret alone; the characters around it that
      // mix in neighbouring bytes still carry some of its bits, so the whole base64 run goes.
      if (f.encoding?.startsWith('base64')) {
        while (start > 0 && BASE64_CHAR.test(text[start - 1]!)) start--;
        while (end < text.length && BASE64_CHAR.test(text[end]!)) end++;
      }
      const last = spans[spans.length - 1];
      if (last && start <= last.end) {
        last.start = Math.min(last.start, start);
        last.end = Math.max(last.end, end);
        last.labels.add(label);
      } else spans.push({ start, end, labels: new Set([label]) });
    }
    let out = '';
    let at = 0;
    for (const s of spans) {
      out += `${text.slice(at, s.start)}[REDACTED:${[...s.labels].join(',')}]`;
      at = s.end;
    }
    return { redacted: out + text.slice(at), findings };
  }

  private finding(secret: number, encoding: string, start: number, end: number): Finding {
    return { kind: 'secret', secret: this.names[secret]!, encoding, start, end };
  }

  /** Secrets hidden by percent-encoding (all of it or some characters), in any of their encodings. */
  private searchDecoded(text: string, decoded: string, into: Finding[]): void {
    const hits: Array<{ start: number; end: number; p: number }> = [];
    this.main.search(decoded, (p, end) => {
      if (this.mainRefs[p]!.some((r) => 'encoding' in r)) hits.push({ start: end - this.main.lengths[p]!, end, p });
    });
    if (hits.length === 0) return;
    const spans = mapSpans(text, hits);
    hits.forEach((h, i) => {
      for (const r of this.mainRefs[h.p]!) {
        if ('encoding' in r) into.push(this.finding(r.secret, r.encoding === 'raw' ? 'url' : `url+${r.encoding}`, spans[i]!.start, spans[i]!.end));
      }
    });
  }

  /** Grows the piece this n-gram continues (same alignment, next offset), or starts a new one. */
  private addGram(list: Piece[], start: number, offset: number, k: number): void {
    for (let j = list.length - 1; j >= 0 && j >= list.length - 8; j--) {
      const p = list[j]!;
      if (p.s1 - k + 1 === offset && p.t0 - p.s0 === start - offset) {
        p.s1 = offset + k;
        return;
      }
    }
    list.push({ t0: start, s0: offset, s1: offset + k });
  }

  /**
   * Chains of 2–3 pieces that together spell the whole secret in order, each starting at most
   * `maxGap` characters after the previous one ends. A secret cut into pieces shorter than the
   * n-gram length (4–6 characters) is not seen.
   */
  private splitFindings(secret: number, pieces: Piece[]): Finding[] {
    const length = this.lengths[secret]!;
    if (pieces.length < 2) return [];
    const out: Finding[] = [];
    // Pieces are created in text order, so the candidates for the next piece are a short run after
    // the current one: the search stays linear even on text crafted to hold thousands of pieces.
    const extend = (chain: number[]): void => {
      const last = pieces[chain[chain.length - 1]!]!;
      if (last.s1 === length && chain.length >= 2) {
        out.push(this.finding(secret, 'split', pieces[chain[0]!]!.t0, last.t0 + (last.s1 - last.s0)));
        return;
      }
      if (chain.length === 3) return;
      const limit = last.t0 + (last.s1 - last.s0) + this.maxGap;
      for (let j = chain[chain.length - 1]! + 1; j < pieces.length && pieces[j]!.t0 <= limit; j++) {
        const q = pieces[j]!;
        if (q.t0 <= last.t0 || q.s0 > last.s1 || q.s1 <= last.s1) continue;
        // Where q's first character would sit if it continued `last` directly: q must come later.
        if (q.t0 <= last.t0 + (q.s0 - last.s0)) continue;
        extend([...chain, j]);
      }
    };
    pieces.forEach((p, i) => {
      if (p.s0 === 0 && p.s1 < length) extend([i]);
    });
    return out;
  }
}
