import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { signatureProblem, signWebhook } from './signature.js';

describe('webhook signatures', () => {
  const secret = 'whsec_test';
  const body = Buffer.from('{"event":"deploy"}');
  const now = 1_800_000_000;

  it('is HMAC-SHA256 over "timestamp.body", hex, as openssl computes it', () => {
    const expected = createHmac('sha256', secret).update(`${now}.{"event":"deploy"}`).digest('hex');
    assert.equal(signWebhook(secret, now, body), `sha256=${expected}`);
    assert.equal(signatureProblem(secret, String(now), `sha256=${expected}`, body, now), undefined);
    assert.equal(signatureProblem(secret, String(now), `sha256=${expected.toUpperCase()}`, body, now), undefined);
  });

  it('refuses another body, another secret, an old or missing timestamp, a malformed header', () => {
    const sig = signWebhook(secret, now, body);
    assert.match(signatureProblem(secret, String(now), sig, Buffer.from('{"event":"deploy "}'), now)!, /does not match/);
    assert.match(signatureProblem('whsec_other', String(now), sig, body, now)!, /does not match/);
    assert.match(signatureProblem(secret, String(now), sig, body, now + 301)!, /more than 300 s away/);
    assert.match(signatureProblem(secret, String(now - 10), sig, body, now)!, /does not match/, 'the timestamp is signed too');
    assert.match(signatureProblem(secret, undefined, sig, body, now)!, /missing or malformed x-bulwark-timestamp/);
    assert.match(signatureProblem(secret, String(now), 'sha1=abc', body, now)!, /missing or malformed x-bulwark-signature/);
  });
});
