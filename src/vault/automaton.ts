/*
 * A hand-written Aho–Corasick automaton over many literal strings.
 *
 * Why not one combined RegExp: the leak detector searches for a few thousand literals at once (every
 * encoding of every secret, plus the n-grams used to spot split secrets). V8's irregexp compiles an
 * alternation of literals into a backtracking choice that tries the alternatives at each position,
 * so its cost grows with the number of secrets; an Aho–Corasick automaton reads each character once
 * whatever the number of patterns. The transition table is dense (states × character classes),
 * where a class is a character that occurs in some pattern and every other character shares class 0.
 */

export class Automaton {
  private readonly classOf: Uint8Array; // UTF-16 code unit < 65536 → class (0 = not in any pattern)
  private readonly classes: number;
  private readonly delta: Int32Array; // state * classes + class → next state
  private readonly outFirst: Int32Array; // state → first index into outList, or -1
  private readonly outNext: Int32Array; // outList entry → next entry in the same chain, or -1
  private readonly outPattern: Int32Array; // outList entry → pattern index
  readonly lengths: Int32Array; // pattern index → length

  constructor(patterns: readonly string[]) {
    if (patterns.length === 0) patterns = ['\u0000\u0000'];
    // Character classes: only characters that appear in a pattern get a column.
    const classOf = new Uint8Array(65536);
    let classes = 1;
    for (const p of patterns) {
      for (let i = 0; i < p.length; i++) {
        const c = p.charCodeAt(i);
        if (classOf[c] !== 0) continue;
        if (classes === 256) throw new Error('automaton: the patterns use more than 255 distinct characters');
        classOf[c] = classes++;
      }
    }
    this.classOf = classOf;
    this.classes = classes;
    this.lengths = Int32Array.from(patterns, (p) => p.length);

    // 1. The trie, as a growable dense table.
    let cap = 1024;
    let delta = new Int32Array(cap * classes).fill(-1);
    let states = 1;
    const terminal: number[][] = [[]];
    patterns.forEach((p, idx) => {
      let s = 0;
      for (let i = 0; i < p.length; i++) {
        const k = s * classes + classOf[p.charCodeAt(i)]!;
        let n = delta[k]!;
        if (n < 0) {
          if (states === cap) {
            cap *= 2;
            const grown = new Int32Array(cap * classes).fill(-1);
            grown.set(delta);
            delta = grown;
          }
          n = states++;
          delta[k] = n;
          terminal.push([]);
        }
        s = n;
      }
      terminal[s]!.push(idx);
    });

    // 2. Failure links by breadth-first search, folded into the table (missing edges point where the
    // failure link would lead), and output chains that share the failure target's chain.
    const fail = new Int32Array(states);
    const outFirst = new Int32Array(states).fill(-1);
    const outNext: number[] = [];
    const outPattern: number[] = [];
    const order: number[] = [0];
    for (let c = 0; c < classes; c++) {
      const n = delta[c]!;
      if (n < 0) delta[c] = 0;
      else { fail[n] = 0; order.push(n); }
    }
    delta[0] = 0; // class 0 never appears in a pattern: it always returns to the root
    for (let head = 0; head < order.length; head++) {
      const s = order[head]!;
      // This state's outputs: its own patterns, then those of its failure state.
      let chain = s === 0 ? -1 : outFirst[fail[s]!]!;
      for (const p of terminal[s]!) {
        outPattern.push(p);
        outNext.push(chain);
        chain = outPattern.length - 1;
      }
      outFirst[s] = chain;
      if (s === 0) continue;
      const base = s * classes;
      const fbase = fail[s]! * classes;
      for (let c = 0; c < classes; c++) {
        const n = delta[base + c]!;
        if (n < 0) delta[base + c] = delta[fbase + c]!;
        else { fail[n] = delta[fbase + c]!; order.push(n); }
      }
    }
    this.delta = delta.slice(0, states * classes);
    this.outFirst = outFirst;
    this.outNext = Int32Array.from(outNext);
    this.outPattern = Int32Array.from(outPattern);
  }

  /**
   * Calls `onHit(pattern, end)` for every occurrence (overlapping included) of every pattern. With
   * `skipSeparators`, characters other than ASCII letters and digits are stepped over as if absent,
   * so "a-b c" matches the pattern "abc" (`end` is then just after the last matched character).
   */
  search(text: string, onHit: (pattern: number, end: number) => void, skipSeparators = false): void {
    const { classOf, classes, delta, outFirst, outNext, outPattern } = this;
    let s = 0;
    for (let i = 0, n = text.length; i < n; i++) {
      const c = text.charCodeAt(i);
      if (skipSeparators && !((c >= 97 && c <= 122) || (c >= 48 && c <= 57) || (c >= 65 && c <= 90))) continue;
      s = delta[s * classes + classOf[c]!]!;
      let o = outFirst[s]!;
      while (o >= 0) {
        onHit(outPattern[o]!, i + 1);
        o = outNext[o]!;
      }
    }
  }

  /** Table size in bytes, for the report on memory use. */
  get bytes(): number {
    return this.delta.byteLength;
  }
}
