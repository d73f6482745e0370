import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readAttachment } from '../../src/channels/attachments.js';
import { openDb, resolveDbTarget } from '../../src/db/client.js';
import { openVaultOn } from '../../src/vault/index.js';

/**
 * Proves a stored attachment is sealed for its conversation: the file on disk holds neither the bytes
 * nor their base64; exactly one of the conversations `own` picks (by chat id) opens it to `bytes`;
 * every other conversation of the channel is refused.
 */
export async function assertSealedAttachment(o: { home: string; channel: string; id: string; bytes: Buffer; own: (chatId: string) => boolean }): Promise<void> {
  const stored = readFileSync(join(o.home, 'attachments', o.channel, `${o.id}.sealed`));
  assert.ok(!stored.includes(o.bytes.subarray(0, 64)) && !stored.toString('utf8').includes(o.bytes.toString('base64').slice(0, 40)), 'the file is stored in the clear');
  const db = await openDb(resolveDbTarget(undefined, o.home));
  try {
    const { cipher } = await openVaultOn(db, o.home, { create: false });
    const open = (conversationId: string) => readAttachment(o.home, o.channel, o.id, (context, sealed) => cipher.open(conversationId, context, sealed));
    const convs = await db.conversation.findMany({ where: { channel: o.channel }, select: { id: true, chatId: true } });
    const own = convs.filter((c) => o.own(c.chatId));
    const opened = await Promise.all(own.map((c) => open(c.id).then((a) => a.bytes, () => undefined)));
    assert.deepEqual(opened.filter(Boolean), [o.bytes], 'exactly the sender\'s conversation opens it');
    const others = convs.filter((c) => !own.includes(c));
    assert.ok(others.length > 0);
    for (const c of others) await assert.rejects(open(c.id), 'another conversation cannot open it');
  } finally {
    await db.$disconnect();
  }
}
