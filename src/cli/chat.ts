import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import type { LoadedConfig } from '../config/load.js';
import { UserError } from '../errors.js';
import { config, fail, hubFetch } from './common.js';

interface Sent { conversationId: string; messageId: string }
interface FileView { name: string; mime: string; bytes: number; url: string }
interface Reply { text: string; seq: number; files?: FileView[] }

/**
 * Saves the files of a reply into `dir` (created 0700) under their names, never overwriting: a name
 * taken gets " (2)", " (3)"…; returns the lines to print. Without `dir`, the lines only name the files.
 */
async function saveFiles(loaded: LoadedConfig, files: FileView[], dir: string | undefined): Promise<string[]> {
  const lines: string[] = [];
  for (const f of files) {
    const size = `${Math.max(1, Math.round(f.bytes / 1024))} KB`;
    if (!dir) { lines.push(`[file ${f.name}, ${size}: run with --files DIR to save it]`); continue; }
    const r = await hubFetch(loaded, f.url);
    if (!r.ok) { lines.push(`[file ${f.name}: could not be downloaded (HTTP ${r.status})]`); continue; }
    const data = Buffer.from(await r.arrayBuffer());
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const dot = f.name.lastIndexOf('.');
    const [stem, ext] = dot > 0 ? [f.name.slice(0, dot), f.name.slice(dot)] : [f.name, ''];
    // basename() again: the hub already made the name safe, but this is where it becomes a path.
    for (let n = 1; ; n++) {
      const path = join(dir, basename(n === 1 ? f.name : `${stem} (${n})${ext}`));
      try {
        writeFileSync(path, data, { flag: 'wx', mode: 0o600 });
        lines.push(`[file saved: ${path}, ${size}]`);
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || n >= 100) throw err;
      }
    }
  }
  return lines;
}

async function send(loaded: LoadedConfig, conversationId: string | undefined, text: string): Promise<Sent> {
  const r = await hubFetch(loaded, '/api/messages', { method: 'POST', body: JSON.stringify({ channel: 'cli', text, ...(conversationId ? { conversationId } : {}) }) });
  const body = (await r.json()) as Sent & { error?: string };
  if (!r.ok) throw new UserError(`the hub refused the message: ${body.error ?? r.status}`);
  return body;
}

/** Waits for the reply to one message by polling the conversation (simple, and survives hub restarts). */
async function awaitReply(loaded: LoadedConfig, sent: Sent, after: number, timeoutMs: number): Promise<Reply> {
  const deadline = Date.now() + timeoutMs;
  let delay = 100;
  while (Date.now() < deadline) {
    const r = await hubFetch(loaded, `/api/conversations/${sent.conversationId}/messages?after=${after}&limit=500`);
    if (r.ok) {
      const { messages } = (await r.json()) as { messages: Array<Reply & { role: string; replyTo: string | null }> };
      const reply = messages.find((m) => m.role === 'assistant' && m.replyTo === sent.messageId);
      if (reply) return reply;
    }
    await new Promise((res) => setTimeout(res, delay));
    delay = Math.min(1000, delay * 1.5);
  }
  throw new UserError(`no reply within ${Math.round(timeoutMs / 1000)}s; the message is queued and the reply will be kept.`, 'check `bulwark status` for a worker and the model (`bulwark doctor`)');
}

export function registerChat(program: Command): void {
  program.command('chat')
    .description('chat with the running hub from this terminal (one line per message)')
    .option('-m, --message <text>', 'send one message, print the reply, and exit')
    .option('-c, --conversation <id>', 'continue an existing conversation')
    .option('--timeout <seconds>', 'how long to wait for each reply', '300')
    .option('--files <dir>', 'save files the agent sends into this directory (otherwise they are only named)')
    .action(async (opts: { message?: string; conversation?: string; timeout: string; files?: string }) => {
      const loaded = config();
      const timeoutMs = Number(opts.timeout) * 1000;
      let conversationId = opts.conversation;
      let seq = 0;
      const turn = async (text: string) => {
        const sent = await send(loaded, conversationId, text);
        conversationId = sent.conversationId;
        const reply = await awaitReply(loaded, sent, seq, timeoutMs);
        seq = reply.seq;
        const files = await saveFiles(loaded, reply.files ?? [], opts.files);
        return [reply.text, ...files].join('\n');
      };
      try {
        if (opts.message !== undefined) {
          process.stdout.write((await turn(opts.message)) + '\n');
          return;
        }
        const interactive = process.stdin.isTTY === true;
        if (interactive) process.stdout.write('Bulwark chat — type a message and press Enter; Ctrl+D to quit.\n');
        const rl = createInterface({ input: process.stdin, output: interactive ? process.stdout : undefined, prompt: 'you> ' });
        if (interactive) rl.prompt();
        for await (const line of rl) {
          const text = line.trim();
          if (text) {
            const answer = await turn(text);
            process.stdout.write(interactive ? `bulwark> ${answer}\n` : `${answer}\n`);
          }
          if (interactive) rl.prompt();
        }
        if (interactive && conversationId) process.stdout.write(`\nconversation: ${conversationId} (continue with: bulwark chat -c ${conversationId})\n`);
      } catch (err) {
        fail(err);
      }
    });
}
