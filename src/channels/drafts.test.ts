import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { LeakDetector } from '../vault/leak.js';
import { DRAFT_HOLD_MIN, visiblePrefix } from './drafts.js';

const SECRET = 'Zq8rT4vN1mK7pL2wX9cB6hJ3dF5gS0aE';
const detector = new LeakDetector([{ name: 'DEPLOY_KEY', value: SECRET }]);
const filler = (n: number) => 'lorem ipsum dolor sit amet '.repeat(Math.ceil(n / 27)).slice(0, n);
const pieces = (s: string) => Array.from({ length: s.length - 7 }, (_, i) => s.slice(i, i + 8));
const showsPartOf = (shown: string, secret: string) => pieces(secret).some((p) => shown.includes(p));

describe('visiblePrefix: a draft shows only what the leak guard has seen whole', () => {
  it('ATTACK: the first half of a secret at the end of the text so far is not shown (redaction alone would show it)', () => {
    const text = `${filler(3000)} the key is ${SECRET.slice(0, 16)}`;
    assert.ok(showsPartOf(detector.redact(text).redacted, SECRET), 'redaction alone shows half a secret');
    const shown = visiblePrefix(text, detector);
    assert.ok(shown.length > 1000, 'the draft shows the text before the hold-back window');
    assert.ok(!showsPartOf(shown, SECRET));
  });

  it('ATTACK: a secret half-written in base64 or hex is not shown', () => {
    for (const enc of [Buffer.from(SECRET).toString('base64'), Buffer.from(SECRET).toString('hex')]) {
      const shown = visiblePrefix(`${filler(3000)} ${enc.slice(0, Math.floor(enc.length * 0.6))}`, detector);
      assert.ok(!shown.includes(enc.slice(0, 12)));
    }
  });

  it('a secret the guard has seen whole is shown redacted, like the final reply', () => {
    const shown = visiblePrefix(`${filler(500)} the key is ${SECRET}. ${filler(3000)}`, detector);
    assert.match(shown, /the key is \[REDACTED:DEPLOY_KEY\]/);
    assert.ok(!showsPartOf(shown, SECRET));
  });

  it('ATTACK: an unterminated private key block is redacted to the end, never shown', () => {
    const block = '-----BEGIN OPENSSH PRIVATE KEY-----\n' + 'b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n'.repeat(40);
    const shown = visiblePrefix(`${filler(200)}\n${block}`, detector);
    assert.ok(!shown.includes('b3BlbnNzaC1rZXkt'));
  });

  it('holds back at least DRAFT_HOLD_MIN characters, more for long secrets, and nothing is shown of short texts', () => {
    assert.equal(visiblePrefix(filler(DRAFT_HOLD_MIN), detector), '');
    const long = 'L0ngS3cret-'.repeat(30);
    const d = new LeakDetector([{ name: 'LONG', value: long }]);
    assert.ok(d.maxSpan > DRAFT_HOLD_MIN);
    const text = `${filler(5000)} ${long.slice(0, long.length - 5)}`;
    const shown = visiblePrefix(text, d);
    assert.ok(shown.length <= text.length - d.maxSpan);
    assert.ok(!shown.includes(long.slice(0, 20)));
  });
});
