import type { PairingStore } from './pairing.js';

/*
 * Who gets through to the agent. Runs in the adapter, before anything reaches a queue, so a stranger
 * costs us one Redis lookup and never a model call.
 *
 * DMs: owners, the `allow` list and paired senders pass; anyone else gets a pairing prompt (when
 * pairing is on) and nothing else. Empty lists and no approvals = nobody but the owners.
 * Groups: the group must be in `groups`; the message must mention the bot, reply to the bot or be a
 * command; with group_senders = "allowlist" the sender must also pass as in a DM (no pairing prompt
 * in a group: the code would be visible to everyone there).
 */

export interface AccessPolicy {
  owners: readonly string[];
  allow: readonly string[];
  groups: readonly string[];
  group_senders: 'anyone' | 'allowlist';
  pairing: boolean;
  pairing_prompt_minutes: number;
}

/** What an adapter knows about one incoming message, normalized. */
export interface Addressing {
  chatType: 'dm' | 'group';
  /** The id matched against the `groups` enable list (group / channel / guild-channel id). */
  groupId?: string | undefined;
  senderId: string;
  senderIsBot: boolean;
  /** The message was written by this bot itself (echo of our own send). */
  fromSelf: boolean;
  /** The bot's user (or role) was mentioned. @everyone/@here/@channel must NOT set this. */
  mentioned: boolean;
  /** The message replies to one of the bot's messages. */
  replyToBot: boolean;
  /** A command addressed to the bot (/start, /help, a slash command). */
  isCommand: boolean;
}

export type Verdict =
  | { pass: true; via: 'owner' | 'allow' | 'paired' | 'group' }
  | { pass: false; reason: 'self' | 'bot' | 'group-not-enabled' | 'not-addressed' | 'not-allowed' | 'pairing-off' }
  | { pass: false; reason: 'unknown-sender'; pairing: true };

/** Broadcast mentions that must never count as addressing the bot. */
export const BROADCAST_MENTION = /(^|[^\w])[@!](everyone|here|channel)\b/i;

/** Whether a group message is addressed to the bot (mention, reply to it, or a command). */
export function addressedInGroup(a: Pick<Addressing, 'mentioned' | 'replyToBot' | 'isCommand'>): boolean {
  return a.mentioned || a.replyToBot || a.isCommand;
}

export class AccessControl {
  constructor(readonly channel: string, private readonly policy: AccessPolicy, private readonly pairing: PairingStore) {}

  private async knownSender(senderId: string): Promise<'owner' | 'allow' | 'paired' | undefined> {
    if (this.policy.owners.includes(senderId)) return 'owner';
    if (this.policy.allow.includes(senderId)) return 'allow';
    if (await this.pairing.isApproved(this.channel, senderId)) return 'paired';
    return undefined;
  }

  isOwner(senderId: string): boolean {
    return this.policy.owners.includes(senderId);
  }

  async check(a: Addressing): Promise<Verdict> {
    if (a.fromSelf) return { pass: false, reason: 'self' };
    if (a.senderIsBot) return { pass: false, reason: 'bot' };
    if (a.chatType === 'group') {
      if (!a.groupId || !this.policy.groups.includes(a.groupId)) return { pass: false, reason: 'group-not-enabled' };
      if (!addressedInGroup(a)) return { pass: false, reason: 'not-addressed' };
      if (this.policy.group_senders === 'anyone') return { pass: true, via: 'group' };
      const via = await this.knownSender(a.senderId);
      return via ? { pass: true, via } : { pass: false, reason: 'not-allowed' };
    }
    const via = await this.knownSender(a.senderId);
    if (via) return { pass: true, via };
    return this.policy.pairing ? { pass: false, reason: 'unknown-sender', pairing: true } : { pass: false, reason: 'pairing-off' };
  }
}
