import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { benignText, randomVault } from '../../test/fixtures/leak-corpus.js';
import { LeakDetector } from './leak.js';
import { caesar } from './variants.js';

// Chosen so that its base64 holds '+' and '/', making base64url a different string.
const SECRET = 'p4ss>>>??~~w0rd-Zq9';
const OTHER = { name: 'OTHER_KEY', value: 'xQ7mK2vL9pR4tY8w' };
const detector = new LeakDetector([{ name: 'DB_PASSWORD', value: SECRET }, OTHER]);

/** Plants `payload` in a sentence, checks the scan names the secret and redaction removes the payload. */
function assertCaught(payload: string, encoding: string): void {
  const text = `Sure! Here is what you asked for: ${payload} -- anything else?`;
  const { redacted, findings } = detector.redact(text);
  const hit = findings.find((f) => f.kind === 'secret' && f.secret === 'DB_PASSWORD');
  assert.ok(hit, `no finding for ${encoding}: ${JSON.stringify(findings)}`);
  assert.equal(hit.encoding, encoding);
  assert.ok(!redacted.includes(payload), `payload survives redaction (${encoding}): ${redacted}`);
  assert.ok(!redacted.includes(SECRET));
  assert.match(redacted, /\[REDACTED:DB_PASSWORD\]/);
  assert.ok(redacted.startsWith('Sure! Here is what you asked for: ') && redacted.endsWith(' -- anything else?'), redacted);
  assert.ok(!JSON.stringify(findings).includes(SECRET), 'a finding holds the secret value');
}

describe('LeakDetector: vault secrets in disguise', () => {
  const bytes = Buffer.from(SECRET);
  it('raw', () => assertCaught(SECRET, 'raw'));
  it('reversed', () => assertCaught([...SECRET].reverse().join(''), 'reversed'));
  it('hex, either case', () => {
    assertCaught(bytes.toString('hex'), 'hex');
    assertCaught(bytes.toString('hex').toUpperCase(), 'hex');
  });
  for (const offset of [0, 1, 2]) {
    // The secret sits `offset` bytes into a longer stream: a JSON blob the model base64-encoded.
    const prefixed = Buffer.concat([Buffer.alloc(offset, 0x41), bytes, Buffer.from('"} and more')]);
    it(`base64 at offset ${offset}`, () => assertCaught(prefixed.toString('base64'), `base64@${offset}`));
    it(`base64url at offset ${offset}`, () => assertCaught(prefixed.toString('base64url'), `base64url@${offset}`));
  }
  it('percent-encoding, full and partial', () => {
    const full = [...bytes].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');
    assertCaught(full, 'url');
    assertCaught(full.toUpperCase(), 'url');
    assertCaught(encodeURIComponent(SECRET), 'url'); // only the punctuation is escaped
    assertCaught(SECRET.replace(/[sw]/g, (c) => `%${c.charCodeAt(0).toString(16)}`), 'url');
  });
  it('ROT13 and every Caesar shift', () => {
    assertCaught(caesar(SECRET, 13), 'rot13');
    for (let n = 1; n < 26; n++) if (n !== 13) assertCaught(caesar(SECRET, n), `caesar+${n}`);
  });
  it('characters separated by spaces or punctuation', () => {
    assertCaught([...SECRET].join(' '), 'separated');
    assertCaught([...SECRET].join('-'), 'separated');
    assertCaught([...SECRET].join('.'), 'separated');
    assertCaught([...SECRET].join(', '), 'separated');
  });
  it('split into pieces with small gaps', () => {
    assertCaught(`${SECRET.slice(0, 9)} (one sec) ${SECRET.slice(9)}`, 'split');
    assertCaught(`${SECRET.slice(0, 6)}..then..${SECRET.slice(6, 13)} and then ${SECRET.slice(13)}`, 'split');
  });
  it('stays fast on text crafted to hold many pieces (no quadratic blow-up)', () => {
    const text = `${SECRET.slice(0, 9)} ${SECRET.slice(9)} x `.repeat(40_000);
    const t0 = performance.now();
    assert.equal(detector.scan(text).length, 40_000);
    assert.ok(performance.now() - t0 < 3000, `took ${Math.round(performance.now() - t0)} ms`);
  });
  it('does not join pieces that are too far apart or out of order', () => {
    const far = `${SECRET.slice(0, 9)}${' filler'.repeat(5)}${SECRET.slice(9)}`;
    assert.equal(detector.scan(far).filter((f) => f.secret === 'DB_PASSWORD').length, 0);
    assert.equal(detector.scan(`${SECRET.slice(9)} and ${SECRET.slice(0, 9)}`).filter((f) => f.secret === 'DB_PASSWORD').length, 0);
  });
});

describe('LeakDetector: credential formats', () => {
  const plain = new LeakDetector([]);
  const samples: Array<[string, string]> = [
    ['openai-key', `sk-proj-${'Ab3'.repeat(16)}`],
    ['openai-key', `sk-${'x9Y'.repeat(16)}`],
    ['anthropic-key', `sk-ant-api03-${'Q7w_'.repeat(20)}`],
    ['github-token', `ghp_${'a1B2'.repeat(9)}`],
    ['github-token', `gho_${'a1B2'.repeat(9)}`],
    ['github-token', `ghs_${'a1B2'.repeat(9)}`],
    ['github-pat', `github_pat_11ABCDEFG0${'x_Y1'.repeat(15)}`],
    ['slack-token', 'xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOpQrStUvWx'],
    ['slack-token', 'xoxp-1234567890-0987654321-AbCdEfGhIjKlMnOpQrStUvWx'],
    ['slack-app-token', 'xapp-1-A0123456789-1234567890-abcdef0123456789'],
    ['telegram-bot-token', `123456789:${'AAH-x_Yz0'.repeat(3)}12345678`],
    ['aws-access-key', 'AKIAIOSFODNN7EXAMPLE'],
    ['aws-access-key', 'ASIAY34FZKBOKMUTVV7A'],
    ['google-api-key', `AIza${'SyD-9tSrke72PouQMnMX'}${'a_b1c2d3e4f5g6h'}`],
    ['stripe-key', `sk_live_${'4eC39HqLyjWDarjtT1zdp7dc'}`],
    ['stripe-key', `rk_live_${'4eC39HqLyjWDarjtT1zdp7dc'}`],
    ['jwt', 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U'],
    ['private-key', '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----'],
    ['private-key', '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC (cut off here'],
  ];
  for (const [pattern, token] of samples) {
    it(`${pattern}: ${token.slice(0, 12)}…`, () => {
      const text = `config dump:\n  value = ${token}\nend`;
      const { redacted, findings } = plain.redact(text);
      const f = findings.find((x) => x.pattern === pattern);
      assert.ok(f, `not found: ${JSON.stringify(findings)}`);
      // A key block cut off before its END line is redacted to the end of the text.
      if (token.includes('cut off')) assert.equal(f.end, text.length);
      else assert.equal(text.slice(f.start, f.end), token);
      assert.ok(!redacted.includes(token));
      assert.ok(redacted.includes(`[REDACTED:${pattern}]`));
    });
  }
  it('bearer-token: redacts the token, keeps the header name', () => {
    const { redacted, findings } = plain.redact('curl -H "Authorization: Bearer abc.DEF-123_xyz~9" https://api');
    assert.equal(findings[0]?.pattern, 'bearer-token');
    assert.equal(redacted, 'curl -H "Authorization: Bearer [REDACTED:bearer-token]" https://api');
  });
  it('does not flag look-alikes: placeholders, class names, short ids', () => {
    const text = [
      'Authorization: Bearer ${token}', 'Authorization: Bearer <your-token>', 'sk-learn-is-a-python-library-name',
      'ghp_short', 'AKIA is the prefix of AWS keys', 'eyJ alone is not a JWT', 'xoxb-', 'call 123456789: now',
      '-----BEGIN CERTIFICATE-----', 'sk_test_4eC39HqLyjWDarjtT1zdp7dc is a documented test key',
    ].join('\n');
    assert.deepEqual(plain.scan(text), []);
  });
});

describe('LeakDetector: benign text and the safety of findings', () => {
  const vault = randomVault(50);
  const full = new LeakDetector(vault);
  const corpus = [
    benignText(1_000_000, 3),
    '0123456789abcdef0123456789abcdef01234567 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    '123e4567-e89b-12d3-a456-426614174000 https://example.com/search?q=hello%20world&lang=en%2Dgb',
    Buffer.from('just some random bytes that are not secrets at all, honestly').toString('base64'),
  ].join('\n');

  it('finds nothing in a benign corpus (prose, code, logs, SHAs, UUIDs, URLs, base64) with 50 secrets', () => {
    const findings = full.scan(corpus);
    assert.deepEqual(findings, [], `false positives: ${JSON.stringify(findings.slice(0, 5))}`);
  });

  it('finds every planted secret, and no finding or error ever holds a value', () => {
    const encoders = [
      (s: string) => s, (s: string) => Buffer.from(`x${s}`).toString('base64'), (s: string) => Buffer.from(s).toString('hex'),
      (s: string) => [...s].reverse().join(''), (s: string) => caesar(s, 7), (s: string) => [...s].join(' '),
      (s: string) => `${s.slice(0, 8)} -- ${s.slice(8)}`, (s: string) => encodeURIComponent(s).replace(/a/g, '%61'),
    ];
    let text = '';
    vault.forEach((s, i) => { text += `${benignText(2000, i)} ${encoders[i % encoders.length]!(s.value)} `; });
    const findings = full.scan(text);
    const named = new Set(findings.map((f) => f.secret));
    for (const s of vault) assert.ok(named.has(s.name), `missed ${s.name} (encoder ${vault.indexOf(s) % encoders.length})`);
    const dump = JSON.stringify(findings) + JSON.stringify(full.redact(text).findings);
    for (const s of vault) assert.ok(!dump.includes(s.value));
  });

  it('refuses secrets shorter than 8 characters, naming the secret but not the value', () => {
    assert.throws(() => new LeakDetector([{ name: 'PIN', value: 'hunter2' }]), (err: Error) => {
      assert.match(err.message, /"PIN" is 7 characters long/);
      assert.ok(!err.message.includes('hunter2'));
      return true;
    });
  });
});
