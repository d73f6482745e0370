/*
 * Markdown (what the agent writes) → each platform's format.
 *
 * No Markdown parser is installed (no marked / mdast / micromark in node_modules) and package.json is
 * not ours to change, so this is a small parser of the subset chat models actually produce: fenced
 * code, headings, lists, block quotes, rules, paragraphs; inline code, bold, italic, strike, links.
 * Anything it does not recognise stays literal text, and every renderer escapes literal text for its
 * platform, so the worst case is a visible asterisk, never broken markup or an injected mention.
 */

export type Inline =
  | { t: 'text'; v: string }
  | { t: 'code'; v: string }
  | { t: 'strong' | 'em' | 'del'; c: Inline[] }
  | { t: 'link'; url: string; c: Inline[] };

export type Block =
  | { t: 'para'; c: Inline[] }
  | { t: 'heading'; c: Inline[] }
  | { t: 'item'; marker: string; depth: number; c: Inline[] }
  | { t: 'quote'; c: Inline[] }
  | { t: 'rule' }
  | { t: 'code'; lang: string; v: string };

const FENCE = /^ {0,3}(`{3,}|~{3,})\s*([\w+#.-]*)[^\n]*$/;

/**
 * The fenced code block opening at lines[i], if one does: its language, its body lines, and the index
 * of its closing line (lines.length when the text ends inside the fence). Shared by the converter and
 * the chunker so both agree on where code is.
 */
export function readFence(lines: readonly string[], i: number): { lang: string; body: string[]; end: number } | undefined {
  const open = FENCE.exec(lines[i]!);
  if (!open) return undefined;
  const mark = open[1]!;
  const body: string[] = [];
  let j = i + 1;
  for (; j < lines.length; j++) {
    const close = lines[j]!.trim();
    if (close.startsWith(mark[0]!.repeat(mark.length)) && /^(`+|~+)$/.test(close)) break;
    body.push(lines[j]!);
  }
  return { lang: open[2] ?? '', body, end: j };
}

/** Parses Markdown into blocks (lines joined within a paragraph by "\n"). */
export function parseMarkdown(md: string): Block[] {
  const lines = md.replace(/\r\n?/g, '\n').split('\n');
  const blocks: Block[] = [];
  let para: string[] = [];
  const flush = () => { if (para.length) blocks.push({ t: 'para', c: parseInline(para.join('\n')) }); para = []; };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const fence = readFence(lines, i);
    if (fence) {
      flush();
      i = fence.end;
      blocks.push({ t: 'code', lang: fence.lang, v: fence.body.join('\n') });
      continue;
    }
    if (/^\s*$/.test(line)) { flush(); continue; }
    let m: RegExpExecArray | null;
    if ((m = /^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$/.exec(line))) { flush(); blocks.push({ t: 'heading', c: parseInline(m[1]!) }); continue; }
    if (/^ {0,3}([-*_])(\s*\1){2,}\s*$/.test(line)) { flush(); blocks.push({ t: 'rule' }); continue; }
    if ((m = /^(\s*)([-*+]|\d{1,9}[.)])\s+(.*)$/.exec(line))) {
      flush();
      blocks.push({ t: 'item', marker: /\d/.test(m[2]!) ? m[2]!.replace(')', '.') : '•', depth: Math.floor(m[1]!.replace(/\t/g, '  ').length / 2), c: parseInline(m[3]!) });
      continue;
    }
    if ((m = /^ {0,3}>\s?(.*)$/.exec(line))) { flush(); blocks.push({ t: 'quote', c: parseInline(m[1]!) }); continue; }
    para.push(line);
  }
  flush();
  return blocks;
}

const PUNCT = /[!"#$%&'()*+,\-./:;<=>?@[\\\]^_`{|}~]/;
const isWord = (ch: string | undefined) => ch !== undefined && /[\p{L}\p{N}]/u.test(ch);

/** Finds the closing delimiter `d` for an opener at `from`: not preceded by whitespace. */
function findClose(s: string, d: string, from: number): number {
  for (let j = from; j <= s.length - d.length; j++) {
    if (s[j] === '\\') { j++; continue; }
    if (s[j] === '`') { const end = s.indexOf('`', j + 1); if (end > 0) { j = end; continue; } }
    if (s.startsWith(d, j) && j > from && !/\s/.test(s[j - 1]!)) {
      if (d.length === 1 && s[j + 1] === d) { j++; continue; }
      if (d === '_' && isWord(s[j + 1])) continue;
      return j;
    }
  }
  return -1;
}

export function parseInline(s: string): Inline[] {
  const out: Inline[] = [];
  let text = '';
  const push = (n: Inline) => { if (text) out.push({ t: 'text', v: text }); text = ''; out.push(n); };
  let i = 0;
  while (i < s.length) {
    const ch = s[i]!;
    if (ch === '\\' && PUNCT.test(s[i + 1] ?? '')) { text += s[i + 1]; i += 2; continue; }
    if (ch === '`') {
      const run = /^`+/.exec(s.slice(i))![0];
      const end = s.indexOf(run, i + run.length);
      if (end > 0) { push({ t: 'code', v: s.slice(i + run.length, end).replace(/^ (.*) $/, '$1') }); i = end + run.length; continue; }
      text += run; i += run.length; continue;
    }
    if (ch === '[') {
      const m = /^\[([^\]\n]*)\]\(\s*<?([^\s)>]+)>?(?:\s+"[^"]*")?\s*\)/.exec(s.slice(i));
      if (m) { push({ t: 'link', url: m[2]!, c: parseInline(m[1]!) }); i += m[0].length; continue; }
    }
    const two = s.slice(i, i + 2);
    if ((two === '**' || two === '__' || two === '~~') && s[i + 2] !== undefined && !/\s/.test(s[i + 2]!) && !(two === '__' && isWord(s[i - 1]))) {
      const end = findClose(s, two, i + 2);
      if (end > 0) { push({ t: two === '~~' ? 'del' : 'strong', c: parseInline(s.slice(i + 2, end)) }); i = end + 2; continue; }
    }
    if ((ch === '*' || ch === '_') && s[i + 1] !== undefined && !/\s/.test(s[i + 1]!) && s[i + 1] !== ch && !(ch === '_' && isWord(s[i - 1]))) {
      const end = findClose(s, ch, i + 1);
      if (end > 0) { push({ t: 'em', c: parseInline(s.slice(i + 1, end)) }); i = end + 1; continue; }
    }
    text += ch; i++;
  }
  if (text) out.push({ t: 'text', v: text });
  return out;
}

/** Links we render as links; anything else (javascript:, data:, relative) stays text. */
export function safeUrl(url: string): boolean {
  return /^(https?:\/\/|mailto:|tg:\/\/)/i.test(url);
}

interface Flavor {
  text(v: string): string;
  code(v: string): string;
  strong(x: string): string;
  em(x: string): string;
  del(x: string): string;
  link(url: string, label: string, plainLabel: string): string;
  heading(x: string): string;
  quote(lines: string[]): string;
  pre(lang: string, v: string): string;
  rule: string;
}

function plain(c: Inline[]): string {
  return c.map((n) => (n.t === 'text' || n.t === 'code' ? n.v : plain(n.c))).join('');
}

function renderInline(c: Inline[], f: Flavor): string {
  return c.map((n) => {
    switch (n.t) {
      case 'text': return f.text(n.v);
      case 'code': return f.code(n.v);
      case 'strong': return f.strong(renderInline(n.c, f));
      case 'em': return f.em(renderInline(n.c, f));
      case 'del': return f.del(renderInline(n.c, f));
      case 'link': return safeUrl(n.url) ? f.link(n.url, renderInline(n.c, f), plain(n.c)) : f.text(`${plain(n.c)} (${n.url})`);
    }
  }).join('');
}

function render(md: string, f: Flavor): string {
  const parts: string[] = [];
  let prev: Block['t'] | undefined;
  let quote: string[] = [];
  const flushQuote = () => { if (quote.length) parts.push(f.quote(quote)); quote = []; };
  for (const b of parseMarkdown(md)) {
    if (b.t !== 'quote') flushQuote();
    const sep = prev === undefined ? '' : (b.t === 'item' && prev === 'item') || (b.t === 'quote' && prev === 'quote') ? '\n' : '\n\n';
    let s: string | undefined;
    switch (b.t) {
      case 'para': s = renderInline(b.c, f); break;
      case 'heading': s = f.heading(renderInline(b.c, f)); break;
      case 'item': s = `${'  '.repeat(b.depth)}${b.marker} ${renderInline(b.c, f)}`; break;
      case 'rule': s = f.rule; break;
      case 'code': s = f.pre(b.lang, b.v); break;
      case 'quote': quote.push(renderInline(b.c, f)); break;
    }
    if (b.t === 'quote') { if (prev !== 'quote' && parts.length) parts.push('\n\n'); prev = b.t; continue; }
    parts.push(sep, s!);
    prev = b.t;
  }
  flushQuote();
  return parts.join('').replace(/^\n+/, '');
}

const escHtml = (v: string) => v.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const escAttr = (v: string) => escHtml(v).replace(/"/g, '&quot;');

/** Telegram Bot API `parse_mode: "HTML"`. */
export function toTelegramHtml(md: string): string {
  return render(md, {
    text: escHtml, code: (v) => `<code>${escHtml(v)}</code>`,
    strong: (x) => `<b>${x}</b>`, em: (x) => `<i>${x}</i>`, del: (x) => `<s>${x}</s>`,
    link: (url, label) => `<a href="${escAttr(url)}">${label}</a>`,
    heading: (x) => `<b>${x}</b>`, quote: (l) => `<blockquote>${l.join('\n')}</blockquote>`,
    pre: (lang, v) => (lang ? `<pre><code class="language-${escAttr(lang)}">${escHtml(v)}</code></pre>` : `<pre>${escHtml(v)}</pre>`),
    rule: '———',
  });
}

/** Slack mrkdwn: only &, < and > are special; `<…>` would otherwise form links and @-mentions. */
export function toSlackMrkdwn(md: string): string {
  return render(md, {
    text: escHtml, code: (v) => `\`${escHtml(v).replace(/`/g, 'ˋ')}\``,
    strong: (x) => `*${x}*`, em: (x) => `_${x}_`, del: (x) => `~${x}~`,
    link: (url, _label, plainLabel) => `<${url.replace(/[<>|]/g, encodeURIComponent)}|${escHtml(plainLabel).replace(/\|/g, '¦')}>`,
    heading: (x) => `*${x}*`, quote: (l) => l.map((x) => `> ${x}`).join('\n'),
    pre: (_lang, v) => `\`\`\`\n${escHtml(v).replace(/```/g, 'ˋˋˋ')}\n\`\`\``,
    rule: '———',
  });
}

/** Breaks @everyone/@here and <@id>/<@&role>/<#channel> so quoting them never pings anyone. */
export function defuseDiscordMentions(v: string): string {
  return v.replace(/@(everyone|here)/gi, '@\u200b$1').replace(/<([@#])/g, '<\u200b$1');
}

/** Discord Markdown: mostly the agent's own syntax, literal text escaped and mentions defused. */
export function toDiscordMarkdown(md: string): string {
  const text = (v: string) => defuseDiscordMentions(v.replace(/([\\*_~`|>#-])/g, (m, c: string, off: number, all: string) => (c === '-' || c === '#' || c === '>') && !(off === 0 || all[off - 1] === '\n') ? m : `\\${c}`));
  return render(md, {
    text, code: (v) => (v.includes('`') ? `\`\` ${defuseDiscordMentions(v)} \`\`` : `\`${defuseDiscordMentions(v)}\``),
    strong: (x) => `**${x}**`, em: (x) => `*${x}*`, del: (x) => `~~${x}~~`,
    link: (url, label) => `[${label}](<${url.replace(/[<>]/g, encodeURIComponent)}>)`,
    heading: (x) => `**${x}**`, quote: (l) => l.map((x) => `> ${x}`).join('\n'),
    pre: (lang, v) => `\`\`\`${lang}\n${defuseDiscordMentions(v.replace(/```/g, '`\u200b``'))}\n\`\`\``,
    rule: '———',
  });
}

/** WhatsApp: *bold*, _italic_, ~strike~, ```code```; links as "label (url)". No escaping exists. */
export function toWhatsApp(md: string): string {
  return render(md, {
    text: (v) => v, code: (v) => `\`${v}\``,
    strong: (x) => `*${x}*`, em: (x) => `_${x}_`, del: (x) => `~${x}~`,
    link: (url, label, plainLabel) => (plainLabel === url ? url : `${label} (${url})`),
    heading: (x) => `*${x}*`, quote: (l) => l.map((x) => `> ${x}`).join('\n'),
    pre: (_lang, v) => `\`\`\`${v}\`\`\``,
    rule: '———',
  });
}

/** Plain text: the markup removed (logs, platforms without formatting). */
export function toPlainText(md: string): string {
  return render(md, {
    text: (v) => v, code: (v) => v, strong: (x) => x, em: (x) => x, del: (x) => x,
    link: (url, _l, plainLabel) => (plainLabel === url ? url : `${plainLabel} (${url})`),
    heading: (x) => x, quote: (l) => l.map((x) => `> ${x}`).join('\n'), pre: (_l, v) => v, rule: '———',
  });
}
