import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { UserError } from '../errors.js';

/*
 * Who may use the HTTP API:
 *  - the owner's CLI, with the API token kept in $BULWARK_HOME/api-token (mode 0600);
 *  - a browser, with an HttpOnly session cookie obtained by exchanging a one-time login code.
 * Codes and sessions are stored hashed in Redis, so a Redis dump does not hand out a session.
 */

export const SESSION_COOKIE = 'bulwark_session';
const LOGIN_TTL_S = 10 * 60;
const SESSION_TTL_S = 7 * 24 * 3600;

const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const loginKey = (code: string) => `bulwark:login:${sha(code)}`;
const sessionKey = (sid: string) => `bulwark:session:${sha(sid)}`;

/** Reads the API token, creating it (0600) on first use; refuses one that others can read. */
export function loadApiToken(home: string, create: boolean): string {
  const file = join(home, 'api-token');
  if (!existsSync(file)) {
    if (!create) throw new UserError(`no API token at ${file}.`, 'start the hub once with `bulwark start` (it creates the token), or check BULWARK_HOME');
    writeFileSync(file, randomBytes(32).toString('base64url') + '\n', { mode: 0o600, flag: 'wx' });
  }
  if ((statSync(file).mode & 0o077) !== 0) {
    if (create) chmodSync(file, 0o600);
    else throw new UserError(`${file} is readable by other users.`, `run chmod 600 ${file}`);
  }
  return readFileSync(file, 'utf8').trim();
}

export function tokensEqual(a: string, b: string): boolean {
  const x = Buffer.from(sha(a));
  const y = Buffer.from(sha(b));
  return timingSafeEqual(x, y);
}

export class Sessions {
  constructor(private readonly redis: Redis) {}

  /** A new one-time login code, valid for ten minutes. */
  async createLoginCode(): Promise<string> {
    const code = randomBytes(24).toString('base64url');
    await this.redis.set(loginKey(code), '1', 'EX', LOGIN_TTL_S);
    return code;
  }

  /** Exchanges a login code (once) for a session id; undefined if the code is unknown or used. */
  async redeem(code: string): Promise<string | undefined> {
    if (!/^[A-Za-z0-9_-]{16,64}$/.test(code)) return undefined;
    const hit = await this.redis.getdel(loginKey(code));
    if (hit === null) return undefined;
    const sid = randomBytes(32).toString('base64url');
    await this.redis.set(sessionKey(sid), '1', 'EX', SESSION_TTL_S);
    return sid;
  }

  async valid(sid: string | undefined): Promise<boolean> {
    if (!sid || sid.length > 128) return false;
    return (await this.redis.exists(sessionKey(sid))) === 1;
  }

  async end(sid: string): Promise<void> {
    await this.redis.del(sessionKey(sid));
  }
}

/**
 * Failure throttle per client address: a handful of failures a minute. Callers check the credential
 * first and consult this only for a failure, so a valid login code or signature always goes through
 * and only the failing source is answered 429. Login codes are 192-bit, so this is about noise and
 * log spam more than guessing.
 */
export class LoginThrottle {
  private readonly fails = new Map<string, { n: number; until: number }>();
  constructor(private readonly max = 10, private readonly windowMs = 60_000) {}

  blocked(ip: string): boolean {
    const f = this.fails.get(ip);
    if (!f) return false;
    if (Date.now() > f.until) { this.fails.delete(ip); return false; }
    return f.n >= this.max;
  }

  fail(ip: string): void {
    const f = this.fails.get(ip);
    if (!f || Date.now() > f.until) this.fails.set(ip, { n: 1, until: Date.now() + this.windowMs });
    else f.n += 1;
    if (this.fails.size > 10_000) this.fails.clear();
  }
}
