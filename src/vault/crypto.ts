import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

/*
 * The vault's only cryptography: AES-256-GCM from node:crypto, keys derived with HKDF-SHA256.
 * Every ciphertext is bound to what it belongs to through the associated data (a secret's id, name
 * and policy; a message's conversation and id), so a row copied to another place, or a policy edited
 * in the database, fails to decrypt instead of being used.
 *
 * Sealed strings look like `v1.<salt>.<nonce>.<ciphertext+tag>` (base64url parts; salt empty when
 * the key is used directly). The version prefix leaves room for a later format.
 */

export const KEY_BYTES = 32;
const NONCE_BYTES = 12;
const SALT_BYTES = 16;
const TAG_BYTES = 16;

/** Decryption failed: wrong key, or the ciphertext, nonce or associated data was altered. */
export class DecryptionError extends Error {
  constructor(what: string) {
    super(`${what} could not be decrypted: the master key is wrong, or the stored data (ciphertext, nonce, policy or row) was altered`);
    this.name = 'DecryptionError';
  }
}

/** A key for one purpose, derived from `master` with a random (or given) salt. */
export function deriveKey(master: Buffer, salt: Buffer, info: string): Buffer {
  return Buffer.from(hkdfSync('sha256', master, salt, info, KEY_BYTES));
}

function encrypt(key: Buffer, plaintext: Buffer, aad: string): { nonce: Buffer; sealed: Buffer } {
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return { nonce, sealed: Buffer.concat([body, cipher.getAuthTag()]) };
}

function decrypt(key: Buffer, nonce: Buffer, sealed: Buffer, aad: string, what: string): Buffer {
  if (nonce.length !== NONCE_BYTES || sealed.length < TAG_BYTES) throw new DecryptionError(what);
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, nonce);
    decipher.setAAD(Buffer.from(aad, 'utf8'));
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
    return Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - TAG_BYTES)), decipher.final()]);
  } catch {
    throw new DecryptionError(what);
  }
}

const b64 = (b: Buffer) => b.toString('base64url');

function parse(sealed: string, what: string): { salt: Buffer; nonce: Buffer; body: Buffer } {
  const parts = sealed.split('.');
  if (parts.length !== 4 || parts[0] !== 'v1') throw new DecryptionError(what);
  return { salt: Buffer.from(parts[1]!, 'base64url'), nonce: Buffer.from(parts[2]!, 'base64url'), body: Buffer.from(parts[3]!, 'base64url') };
}

/**
 * Encrypts under a key derived from `master` with a fresh random salt: one key per ciphertext, so
 * no (key, nonce) pair can ever repeat however many values are sealed.
 */
export function sealWithMaster(master: Buffer, info: string, plaintext: Buffer, aad: string): string {
  const salt = randomBytes(SALT_BYTES);
  const { nonce, sealed } = encrypt(deriveKey(master, salt, info), plaintext, aad);
  return ['v1', b64(salt), b64(nonce), b64(sealed)].join('.');
}

export function openWithMaster(master: Buffer, info: string, sealed: string, aad: string, what: string): Buffer {
  const { salt, nonce, body } = parse(sealed, what);
  if (salt.length !== SALT_BYTES) throw new DecryptionError(what);
  return decrypt(deriveKey(master, salt, info), nonce, body, aad, what);
}

/** Encrypts with a data key used directly (random 96-bit nonces; a conversation's key seals few enough messages). */
export function sealWithKey(key: Buffer, plaintext: string, aad: string): string {
  const { nonce, sealed } = encrypt(key, Buffer.from(plaintext, 'utf8'), aad);
  return ['v1', '', b64(nonce), b64(sealed)].join('.');
}

export function openWithKey(key: Buffer, sealed: string, aad: string, what: string): string {
  const { nonce, body } = parse(sealed, what);
  return decrypt(key, nonce, body, aad, what).toString('utf8');
}

export function newDataKey(): Buffer {
  return randomBytes(KEY_BYTES);
}
