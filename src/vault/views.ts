/*
 * Views of a text with one kind of obfuscation undone, so that a literal search finds what the
 * obfuscation hid, without backtracking regular expressions. The percent-decoded view is built with
 * one native `replace`, and the map back to the original offsets is computed only for the rare spans
 * that hit, in one forward walk. Separators need no copy at all: the automaton steps over them.
 */

export interface Span {
  start: number;
  end: number;
}

const ESCAPE = /%[0-9A-Fa-f]{2}/g;

const isAlnum = (c: number): boolean => (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
const isHex = (c: number): boolean => (c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102);

/** `text` with every `%XX` decoded to the byte it names (as a Latin-1 character). */
export function percentDecode(text: string): string {
  return text.replace(ESCAPE, (e) => String.fromCharCode(parseInt(e.slice(1), 16)));
}

/**
 * The start of the span of `text` ending at `end` that holds `count` ASCII letters and digits: maps a
 * match found with separators skipped (see Automaton.search) back to where it starts.
 */
export function startBeforeAlnum(text: string, end: number, count: number): number {
  let i = end;
  while (count > 0 && i > 0) if (isAlnum(text.charCodeAt(--i))) count--;
  return i;
}

/**
 * Maps spans of the percent-decoded view back to spans of `text`. Spans may
 * come in any order; the result is in the same order.
 */
export function mapSpans(text: string, spans: readonly Span[]): Span[] {
  // Every view position that a span starts at or ends just after, in ascending order.
  const wanted = new Set<number>();
  for (const s of spans) wanted.add(s.start).add(s.end - 1);
  const points = [...wanted].sort((a, b) => a - b);
  const startOf = new Map<number, number>();
  const endOf = new Map<number, number>();
  let v = 0; // position in the view
  let k = 0; // next point to resolve
  for (let i = 0; i < text.length && k < points.length; ) {
    const c = text.charCodeAt(i);
    const width = c === 37 && i + 2 < text.length && isHex(text.charCodeAt(i + 1)) && isHex(text.charCodeAt(i + 2)) ? 3 : 1;
    while (k < points.length && points[k] === v) {
      startOf.set(v, i);
      endOf.set(v, i + width);
      k++;
    }
    v++;
    i += width;
  }
  return spans.map((s) => ({ start: startOf.get(s.start)!, end: endOf.get(s.end - 1)! }));
}
