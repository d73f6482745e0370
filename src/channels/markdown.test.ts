import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { toDiscordMarkdown, toSlackMrkdwn, toTelegramHtml, toWhatsApp } from './markdown.js';
import { chunkMessage } from './chunk.js';

describe('Markdown → Telegram HTML', () => {
  it('converts the common constructs', () => {
    assert.equal(toTelegramHtml('**bold** and *it* and _it2_ and ~~gone~~ and `x<y`'), '<b>bold</b> and <i>it</i> and <i>it2</i> and <s>gone</s> and <code>x&lt;y</code>');
    assert.equal(toTelegramHtml('# Title\n\ntext'), '<b>Title</b>\n\ntext');
    assert.equal(toTelegramHtml('- one\n- two\n1. first'), '• one\n• two\n1. first');
    assert.equal(toTelegramHtml('[site](https://example.com/?a=1&b="2")'), '<a href="https://example.com/?a=1&amp;b=&quot;2&quot;">site</a>');
    assert.equal(toTelegramHtml('```ts\nconst a = 1 < 2 && b;\n```'), '<pre><code class="language-ts">const a = 1 &lt; 2 &amp;&amp; b;</code></pre>');
    assert.equal(toTelegramHtml('```\nplain\n```'), '<pre>plain</pre>');
  });

  it('escapes HTML the model (or an attacker quoting it) writes, so it cannot inject markup', () => {
    const html = toTelegramHtml('<a href="tg://evil">click</a> & <b>x</b>');
    assert.equal(html, '&lt;a href="tg://evil"&gt;click&lt;/a&gt; &amp; &lt;b&gt;x&lt;/b&gt;');
    assert.doesNotMatch(html, /<a /);
  });

  it('does not turn javascript: links into links', () => {
    assert.equal(toTelegramHtml('[x](javascript:alert(1))'), 'x (javascript:alert(1))');
    assert.doesNotMatch(toTelegramHtml('[x](javascript:alert)'), /href/);
  });

  it('leaves snake_case and lone asterisks alone', () => {
    assert.equal(toTelegramHtml('my_var_name and 2 * 3 * 4'), 'my_var_name and 2 * 3 * 4');
  });
});

describe('Markdown → Slack mrkdwn, Discord, WhatsApp', () => {
  it('Slack: bold/italic/links, and <!channel> cannot be forged', () => {
    assert.equal(toSlackMrkdwn('**b** _i_ [t](https://x.io)'), '*b* _i_ <https://x.io|t>');
    assert.equal(toSlackMrkdwn('hi <!channel> <@U123>'), 'hi &lt;!channel&gt; &lt;@U123&gt;');
    assert.equal(toSlackMrkdwn('```py\nif a < b: pass\n```'), '```\nif a &lt; b: pass\n```');
  });
  it('Discord: mentions are defused everywhere, including code', () => {
    const out = toDiscordMarkdown('hey @everyone and @here <@123> `@everyone`');
    assert.doesNotMatch(out, /@everyone|@here|<@1/);
    assert.equal(toDiscordMarkdown('**b** *i*'), '**b** *i*');
  });
  it('WhatsApp: *bold*, _italic_, ```code```', () => {
    assert.equal(toWhatsApp('**b** *i* `c`\n\n```js\nx()\n```'), '*b* _i_ `c`\n\n```x()```');
  });
});

describe('chunkMessage', () => {
  const limit = 200;
  it('keeps short text whole', () => {
    assert.deepEqual(chunkMessage('hello **there**', { limit, convert: toTelegramHtml }), ['hello <b>there</b>']);
  });

  it('splits on paragraph boundaries, each chunk within the limit measured after conversion', () => {
    const paras = Array.from({ length: 10 }, (_, i) => `Paragraph ${i} with <angle> & ampersand text that grows longer`);
    const chunks = chunkMessage(paras.join('\n\n'), { limit, convert: toTelegramHtml });
    assert.ok(chunks.length > 1);
    for (const c of chunks) assert.ok(c.length <= limit, `chunk of ${c.length} > ${limit}`);
    assert.equal(chunks.join('\n\n'), toTelegramHtml(paras.join('\n\n')), 'nothing lost, split only between paragraphs');
  });

  it('never splits inside a fence: a long fence is closed and reopened with its language', () => {
    const code = Array.from({ length: 40 }, (_, i) => `line_${i} = ${i} < ${i + 1}`).join('\n');
    const md = `Intro text.\n\n\`\`\`python\n${code}\n\`\`\`\n\nAfter.`;
    const chunks = chunkMessage(md, { limit, convert: toTelegramHtml });
    assert.ok(chunks.length > 2);
    for (const c of chunks) {
      assert.ok(c.length <= limit);
      assert.equal((c.match(/<pre>/g) ?? []).length, (c.match(/<\/pre>/g) ?? []).length, 'every chunk balances its tags');
    }
    const codeChunks = chunks.filter((c) => c.includes('<pre>'));
    for (const c of codeChunks) assert.match(c, /^(Intro text\.\n\n)?<pre><code class="language-python">/);
    const lines = codeChunks.flatMap((c) => /<code[^>]*>([\s\S]*)<\/code>/.exec(c)![1]!.split('\n'));
    assert.deepEqual(lines, code.replace(/</g, '&lt;').split('\n'), 'all code lines, in order, none cut');
    assert.match(chunks.at(-1)!, /After\.$/);
  });

  it('cuts an over-long line at word boundaries, and a single giant word hard', () => {
    const md = `${'word '.repeat(100)}\n\n${'x'.repeat(450)}`;
    const chunks = chunkMessage(md, { limit: 100, convert: toTelegramHtml });
    for (const c of chunks) assert.ok(c.length <= 100);
    assert.equal(chunks.join('').replace(/\s/g, ''), md.replace(/\s/g, ''));
  });

  it('Markdown fences in Slack chunks stay balanced', () => {
    const md = '```\n' + Array.from({ length: 50 }, (_, i) => `row ${i}`).join('\n') + '\n```';
    for (const c of chunkMessage(md, { limit: 120, convert: toSlackMrkdwn })) {
      assert.ok(c.length <= 120);
      assert.equal((c.match(/```/g) ?? []).length, 2);
    }
  });
});
