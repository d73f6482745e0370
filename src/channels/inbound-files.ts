import { ATTACHMENT_MAX_BYTES, AttachmentRefused, attachmentRef, refusedRef, storeAttachment } from './attachments.js';
import type { ChatCore, ChatIO, IncomingChat, ReceiveResult } from './chat.js';
import { sleep } from './connection.js';
import { inboundJobId } from './contract.js';
import { dedupeKey } from './inbox.js';

/*
 * The shared path for files on every chat platform (Telegram, Slack, Discord, WhatsApp): access
 * control first, so a stranger's upload is never downloaded; then each file is fetched (the adapter
 * knows how), capped, type-checked by its bytes and stored sealed for the conversation; the agent gets
 * one reference line per file, or a refusal line it can explain.
 */

/** At most this many files of one message are fetched; the rest are named as refused. */
export const MAX_FILES_PER_MESSAGE = 10;

export interface InboundFile {
  /** The user's file name: shown to the agent quoted, never used as a path. */
  name?: string | undefined;
  /** The size the platform declares; over the cap, the file is refused without a download. */
  size?: number | undefined;
  /** Fetches the bytes (capped); throws AttachmentRefused with a reason the user should hear. */
  download(): Promise<Buffer>;
}

const tooLarge = () => `larger than ${ATTACHMENT_MAX_BYTES / 1024 / 1024} MB`;

/** Fetches and stores each file; one line per file for the agent. Never throws for a bad file. */
export async function attachmentLines(core: ChatCore, chat: IncomingChat, files: InboundFile[]): Promise<string[]> {
  const lines: string[] = [];
  for (const [i, f] of files.entries()) {
    if (i >= MAX_FILES_PER_MESSAGE) { lines.push(refusedRef(f.name, `only ${MAX_FILES_PER_MESSAGE} files per message are read`)); continue; }
    if (f.size !== undefined && f.size > ATTACHMENT_MAX_BYTES) { lines.push(refusedRef(f.name, tooLarge())); continue; }
    try {
      const bytes = await f.download();
      if (bytes.length > ATTACHMENT_MAX_BYTES) throw new AttachmentRefused(tooLarge());
      const stored = await storeAttachment(core.deps.home, core.name, bytes, (context, b64) => core.sealFor(chat, context, b64));
      lines.push(attachmentRef(stored, f.name));
    } catch (err) {
      if (err instanceof AttachmentRefused) { lines.push(refusedRef(f.name, err.reason)); continue; }
      core.logger.warn({ err: core.scrub((err as Error).message) }, 'could not download an attachment');
      lines.push(refusedRef(f.name, 'the download failed'));
    }
  }
  return lines;
}

/**
 * `core.receive` for a message that carries files: admitted first (a stranger gets the pairing prompt
 * and nothing is downloaded), then the reference lines are appended to the text and it is enqueued.
 * An approval command in the caption is decided like a plain one.
 */
export async function receiveWithFiles(core: ChatCore, chat: IncomingChat, io: ChatIO, files: InboundFile[]): Promise<ReceiveResult> {
  if (files.length === 0) return core.receive(chat, io);
  const admitted = await core.admit(chat, io);
  if (!('ok' in admitted)) return admitted;
  // "/approve ID" as a file's caption is still the command (the file is not fetched).
  const command = await core.approvalCommand(chat, io);
  if (command) return command;
  // One platform message can arrive as two events at once (Slack sends `message` and `app_mention`
  // for one mention) or again later (a redelivery): its files are fetched once. Whoever holds the
  // claim fetches; the other waits for it and then gets the Inbox's "duplicate" answer — or fetches
  // itself if the holder failed before queueing the message.
  const jobId = inboundJobId({ channel: core.name, accountId: chat.accountId, messageId: chat.messageId });
  const claim = `bulwark:files-claim:${jobId}`;
  const started = Date.now();
  for (;;) {
    if (await core.redis.exists(dedupeKey(jobId))) return core.enqueue(chat, io);
    if (await core.redis.set(claim, '1', 'EX', CLAIM_TTL_S, 'NX')) break;
    if (Date.now() - started > CLAIM_TTL_S * 1000) break;
    await sleep(CLAIM_POLL_MS);
  }
  try {
    const lines = await attachmentLines(core, chat, files);
    return await core.enqueue({ ...chat, text: [chat.text, ...lines].filter(Boolean).join('\n\n') }, io);
  } finally {
    await core.redis.del(claim).catch(() => undefined);
  }
}

/** How long one delivery of a message may take to fetch its files before another may try. */
const CLAIM_TTL_S = 120;
const CLAIM_POLL_MS = 100;

/** Whether a file URL is on one of the platform's file hosts (https), or on the configured stand-in origin (tests). */
export function onAllowedHost(url: string, hosts: readonly string[], configuredApi?: string): boolean {
  let u: URL;
  try { u = new URL(url); } catch { return false; }
  if (u.username || u.password) return false;
  if (u.protocol === 'https:' && hosts.includes(u.hostname)) return true;
  if (!configuredApi) return false;
  try { return new URL(configuredApi).origin === u.origin; } catch { return false; }
}
