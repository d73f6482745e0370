import { randomInt } from 'node:crypto';
import type { Redis } from 'ioredis';
import { z } from 'zod';

/*
 * Pairing: an unknown sender in a DM gets a short code; the owner approves it with
 * `bulwark pairing approve CODE` and the sender joins that channel's approved set. Everything lives
 * in Redis so every gateway process sees the same codes and approvals.
 *
 * Keys (channel = adapter name):
 *   bulwark:pair:code:CODE              JSON PendingPairing, EX ttl          (single use: GETDEL)
 *   bulwark:pair:pending:CHANNEL        ZSET code → expiry ms                (the per-channel cap)
 *   bulwark:pair:sender:CHANNEL:SENDER  the sender's current code, EX ttl    (one code per sender)
 *   bulwark:pair:prompted:CHANNEL:SENDER  NX EX prompt interval              (prompt rate limit)
 *   bulwark:access:CHANNEL:approved     SET of approved sender ids
 */

/** No 0/O, 1/I/L: a code is read off a phone screen and typed into a terminal. */
export const CODE_ALPHABET = 'ABCDEFGHJKMNPQRSTUVWXYZ23456789';
export const CODE_LENGTH = 8;
export const PAIRING_TTL_S = 3600;
export const MAX_PENDING = 3;
export const codeSchema = z.string().trim().toUpperCase().regex(new RegExp(`^[${CODE_ALPHABET}]{${CODE_LENGTH}}$`), `a pairing code is ${CODE_LENGTH} characters from ${CODE_ALPHABET}`);

export interface PendingPairing {
  code: string;
  channel: string;
  senderId: string;
  senderName?: string | undefined;
  chatId: string;
  createdAt: number;
  expiresAt: number;
}

const codeKey = (code: string) => `bulwark:pair:code:${code}`;
const pendingKey = (channel: string) => `bulwark:pair:pending:${channel}`;
const senderKey = (channel: string, sender: string) => `bulwark:pair:sender:${channel}:${sender}`;
const promptedKey = (channel: string, sender: string) => `bulwark:pair:prompted:${channel}:${sender}`;
export const approvedKey = (channel: string) => `bulwark:access:${channel}:approved`;

/*
 * Atomically: reuse the sender's live code, else (pending set pruned of expired codes) refuse when
 * the channel already has MAX pending, else store the new code. Returns {code, fresh} or {full}.
 */
const ISSUE = `
local existing = redis.call('get', KEYS[3])
if existing and redis.call('exists', 'bulwark:pair:code:' .. existing) == 1 then return {existing, '0'} end
redis.call('zremrangebyscore', KEYS[2], '-inf', ARGV[3])
if redis.call('zcard', KEYS[2]) >= tonumber(ARGV[4]) then return {'', 'full'} end
if redis.call('set', KEYS[1], ARGV[2], 'EX', ARGV[5], 'NX') == false then return {'', 'clash'} end
redis.call('zadd', KEYS[2], ARGV[6], ARGV[1])
redis.call('set', KEYS[3], ARGV[1], 'EX', ARGV[5])
return {ARGV[1], '1'}`;

const pendingSchema = z.object({
  code: z.string(), channel: z.string(), senderId: z.string(), senderName: z.string().optional(),
  chatId: z.string(), createdAt: z.number(), expiresAt: z.number(),
});

export type IssueResult =
  | { kind: 'code'; code: string; fresh: boolean; expiresAt?: number }
  | { kind: 'full' };

export class PairingStore {
  constructor(private readonly redis: Redis, private readonly ttlS = PAIRING_TTL_S, private readonly maxPending = MAX_PENDING) {}

  static newCode(): string {
    let s = '';
    for (let i = 0; i < CODE_LENGTH; i++) s += CODE_ALPHABET[randomInt(CODE_ALPHABET.length)];
    return s;
  }

  /** The sender's pairing code: their live one, a new one, or `full` when the channel has too many pending. */
  async issue(p: { channel: string; senderId: string; senderName?: string | undefined; chatId: string }): Promise<IssueResult> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const code = PairingStore.newCode();
      const now = Date.now();
      const record: PendingPairing = { code, channel: p.channel, senderId: p.senderId, senderName: p.senderName?.slice(0, 128), chatId: p.chatId, createdAt: now, expiresAt: now + this.ttlS * 1000 };
      const [got, flag] = (await this.redis.eval(ISSUE, 3, codeKey(code), pendingKey(p.channel), senderKey(p.channel, p.senderId),
        code, JSON.stringify(record), now, this.maxPending, this.ttlS, record.expiresAt)) as [string, string];
      if (flag === 'full') return { kind: 'full' };
      if (flag === 'clash') continue;
      return { kind: 'code', code: got, fresh: flag === '1' };
    }
    throw new Error('could not draw an unused pairing code');
  }

  /** True at most once per `intervalS` per sender: whether to (re-)send the pairing prompt now. */
  async mayPrompt(channel: string, senderId: string, intervalS: number): Promise<boolean> {
    return (await this.redis.set(promptedKey(channel, senderId), '1', 'EX', intervalS, 'NX')) === 'OK';
  }

  async list(channel?: string): Promise<PendingPairing[]> {
    const channels = channel ? [channel] : (await this.redis.keys('bulwark:pair:pending:*')).map((k) => k.slice('bulwark:pair:pending:'.length));
    const out: PendingPairing[] = [];
    for (const ch of channels) {
      await this.redis.zremrangebyscore(pendingKey(ch), '-inf', Date.now());
      for (const code of await this.redis.zrange(pendingKey(ch), 0, -1)) {
        const raw = await this.redis.get(codeKey(code));
        const parsed = raw ? pendingSchema.safeParse(JSON.parse(raw)) : undefined;
        if (parsed?.success) out.push(parsed.data);
      }
    }
    return out.sort((a, b) => a.createdAt - b.createdAt);
  }

  /** Takes the code (single use). Undefined when it is unknown, expired or already used. */
  private async take(code: string): Promise<PendingPairing | undefined> {
    const c = codeSchema.safeParse(code);
    if (!c.success) return undefined;
    const raw = await this.redis.getdel(codeKey(c.data));
    if (!raw) return undefined;
    const parsed = pendingSchema.safeParse(JSON.parse(raw));
    if (!parsed.success) return undefined;
    const p = parsed.data;
    await this.redis.multi().zrem(pendingKey(p.channel), p.code).del(senderKey(p.channel, p.senderId)).exec();
    return p;
  }

  async approve(code: string): Promise<PendingPairing | undefined> {
    const p = await this.take(code);
    if (p) await this.redis.sadd(approvedKey(p.channel), p.senderId);
    return p;
  }

  async deny(code: string): Promise<PendingPairing | undefined> {
    return this.take(code);
  }

  async isApproved(channel: string, senderId: string): Promise<boolean> {
    return (await this.redis.sismember(approvedKey(channel), senderId)) === 1;
  }

  async approved(channel: string): Promise<string[]> {
    return (await this.redis.smembers(approvedKey(channel))).sort();
  }

  /** Removes a sender's approval (they get a pairing prompt again next time). */
  async revoke(channel: string, senderId: string): Promise<boolean> {
    return (await this.redis.srem(approvedKey(channel), senderId)) === 1;
  }
}
