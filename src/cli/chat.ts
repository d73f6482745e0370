import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import type { LoadedConfig } from '../config/load.js';
import { UserError } from '../errors.js';
import { config, fail, hubFetch } from './common.js';

interface Sent { conversationId: string; messageId: string }

async function send(loaded: LoadedConfig, conversationId: string | undefined, text: string): Promise<Sent> {
  const r = await hubFetch(loaded, '/api/messages', { method: 'POST', body: JSON.stringify({ channel: 'cli', text, ...(conversationId ? { conversationId } : {}) }) });
  const body = (await r.json()) as Sent & { error?: string };
  if (!r.ok) throw new UserError(`the hub refused the message: ${body.error ?? r.status}`);
  return body;
}

/** Waits for the reply to one message by polling the conversation (simple, and survives hub restarts). */
async function awaitReply(loaded: LoadedConfig, sent: Sent, after: number, timeoutMs: number): Promise<{ text: string; seq: number }> {
  const deadline = Date.now() + timeoutMs;
  let delay = 100;
  while (Date.now() < deadline) {
    const r = await hubFetch(loaded, `/api/conversations/${sent.conversationId}/messages?after=${after}&limit=500`);
    if (r.ok) {
      const { messages } = (await r.json()) as { messages: Array<{ role: string; text: string; seq: number; replyTo: string | null }> };
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
    .action(async (opts: { message?: string; conversation?: string; timeout: string }) => {
      const loaded = config();
      const timeoutMs = Number(opts.timeout) * 1000;
      let conversationId = opts.conversation;
      let seq = 0;
      const turn = async (text: string) => {
        const sent = await send(loaded, conversationId, text);
        conversationId = sent.conversationId;
        const reply = await awaitReply(loaded, sent, seq, timeoutMs);
        seq = reply.seq;
        return reply.text;
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
