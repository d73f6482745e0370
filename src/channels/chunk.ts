/*
 * Splits the agent's Markdown into messages that fit a platform's limit, measured on the CONVERTED
 * text (HTML tags and escapes count). Splits fall on paragraph boundaries, else line boundaries, else
 * word boundaries; never inside a code fence: a fence too long for one message is cut into several
 * fences, each closed and reopened with the same language. Each chunk is converted on its own, so
 * every chunk's markup is balanced.
 */

import { readFence } from './markdown.js';

interface Unit { md: string; code?: { lang: string; lines: string[] } }

/** Paragraph units and whole fenced code blocks, in order. */
function units(md: string): Unit[] {
  const lines = md.replace(/\r\n?/g, '\n').split('\n');
  const out: Unit[] = [];
  let para: string[] = [];
  const flush = () => { if (para.length) out.push({ md: para.join('\n') }); para = []; };
  for (let i = 0; i < lines.length; i++) {
    const f = readFence(lines, i);
    if (f) {
      flush();
      i = f.end;
      out.push({ md: fence(f.lang, f.body), code: { lang: f.lang, lines: f.body } });
      continue;
    }
    if (lines[i]!.trim() === '') flush();
    else para.push(lines[i]!);
  }
  flush();
  return out;
}

function fence(lang: string, lines: string[]): string {
  const longest = Math.max(2, ...lines.map((l) => /^\s*(`+)/.exec(l)?.[1]!.length ?? 0));
  const mark = '`'.repeat(longest + 1);
  return `${mark}${lang}\n${lines.join('\n')}\n${mark}`;
}

/** Cuts one string at word boundaries (hard cut for a word longer than the limit). */
function splitWords(md: string, fits: (s: string) => boolean): string[] {
  const out: string[] = [];
  let cur = '';
  for (const word of md.split(/(?<=\s)/)) {
    if (fits(cur + word)) { cur += word; continue; }
    if (cur) out.push(cur.trimEnd());
    cur = '';
    let w = word;
    while (!fits(w) && w.length > 1) {
      let n = w.length;
      while (n > 1 && !fits(w.slice(0, n))) n = Math.floor(n * 0.8);
      out.push(w.slice(0, n));
      w = w.slice(n);
    }
    cur = w;
  }
  if (cur.trim()) out.push(cur.trimEnd());
  return out;
}

/** Breaks a unit that does not fit on its own into units that do. */
function shrink(u: Unit, fits: (s: string) => boolean): string[] {
  if (u.code) {
    const out: string[] = [];
    let cur: string[] = [];
    for (const line of u.code.lines) {
      if (fits(fence(u.code.lang, [...cur, line]))) { cur.push(line); continue; }
      if (cur.length) out.push(fence(u.code.lang, cur));
      cur = [];
      if (fits(fence(u.code.lang, [line]))) { cur = [line]; continue; }
      // One line longer than a message: cut it, each piece in its own fence.
      for (const piece of splitWords(line, (s) => fits(fence(u.code!.lang, [s])))) out.push(fence(u.code.lang, [piece]));
    }
    if (cur.length) out.push(fence(u.code.lang, cur));
    return out;
  }
  const out: string[] = [];
  let cur = '';
  for (const line of u.md.split('\n')) {
    const next = cur ? `${cur}\n${line}` : line;
    if (fits(next)) { cur = next; continue; }
    if (cur) out.push(cur);
    cur = '';
    if (fits(line)) { cur = line; continue; }
    out.push(...splitWords(line, fits));
  }
  if (cur) out.push(cur);
  return out;
}

export interface ChunkOptions {
  /** The platform's maximum message length, in UTF-16 code units of the converted text. */
  limit: number;
  /** Markdown → platform text (toTelegramHtml, toSlackMrkdwn, …). */
  convert: (md: string) => string;
}

/** The agent's Markdown as a list of converted messages, each at most `limit` long. */
export function chunkMessage(md: string, o: ChunkOptions): string[] {
  const fits = (s: string) => o.convert(s).length <= o.limit;
  const pieces: string[] = [];
  for (const u of units(md)) pieces.push(...(fits(u.md) ? [u.md] : shrink(u, fits)));
  const chunks: string[] = [];
  let cur = '';
  for (const p of pieces) {
    const next = cur ? `${cur}\n\n${p}` : p;
    if (fits(next)) { cur = next; continue; }
    if (cur) chunks.push(cur);
    cur = p;
  }
  if (cur) chunks.push(cur);
  return chunks.map((c) => o.convert(c)).filter((c) => c.trim() !== '');
}
