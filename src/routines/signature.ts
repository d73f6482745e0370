import { createHmac, timingSafeEqual } from 'node:crypto';

/*
 * Webhook signing: X-Bulwark-Timestamp is the sender's clock in unix seconds, and
 * X-Bulwark-Signature is "sha256=" + hex HMAC-SHA256(secret, timestamp + "." + raw body).
 * Signing the timestamp with the body is what makes an old request useless: it is refused once the
 * clock has moved on by MAX_SKEW_S, and inside that window the same signature is accepted only once.
 */

export const SIGNATURE_HEADER = 'x-bulwark-signature';
export const TIMESTAMP_HEADER = 'x-bulwark-timestamp';
export const MAX_SKEW_S = 300;

export function signWebhook(secret: string, timestamp: number, body: Buffer | string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest('hex')}`;
}

/** Checks a request's headers against the secret; returns why it is refused, or undefined. */
export function signatureProblem(secret: string, timestamp: string | undefined, signature: string | undefined, body: Buffer, nowS = Date.now() / 1000): string | undefined {
  if (!timestamp || !/^\d{1,12}$/.test(timestamp)) return `missing or malformed ${TIMESTAMP_HEADER} (unix seconds)`;
  if (Math.abs(nowS - Number(timestamp)) > MAX_SKEW_S) return `${TIMESTAMP_HEADER} is more than ${MAX_SKEW_S} s away from the hub's clock: sign with the current time (and check the sender's clock)`;
  if (!signature || !/^sha256=[0-9a-f]{64}$/i.test(signature)) return `missing or malformed ${SIGNATURE_HEADER} (sha256=<64 hex digits>)`;
  const expected = Buffer.from(signWebhook(secret, Number(timestamp), body).slice(7), 'hex');
  const given = Buffer.from(signature.slice(7), 'hex');
  // Both are 32 bytes (checked by the pattern above), so the comparison takes the same time whatever they hold.
  if (!timingSafeEqual(expected, given)) return 'the signature does not match: sign timestamp + "." + the exact body bytes with the routine\'s secret';
  return undefined;
}
