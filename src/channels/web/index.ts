import type { Redis } from 'ioredis';
import type { ChannelAdapter, ChannelStatus, OutboundMessage } from '../contract.js';
import { fileViews } from './routes.js';

/** The event a browser or `bulwark chat` receives for each reply. */
export interface WebEvent {
  id: string; seq: number; conversationId: string; role: 'assistant'; text: string; replyTo?: string | undefined;
  /** Files sent with the reply, with the URL to download each (routes.ts). */
  files?: Array<{ name: string; mime: string; bytes: number; url: string }>;
}

const topic = (conversationId: string) => `bulwark:web:${conversationId}`;

/**
 * The local web chat and the CLI chat. Delivering a reply means publishing it on Redis, because the
 * listener (an SSE stream) may be attached to any gateway process; every gateway relays the
 * conversations its own clients follow. Replies are also in the database, so a client that was not
 * listening reads them with the polling API.
 */
export class WebChannel implements ChannelAdapter {
  constructor(readonly name: 'web' | 'cli', private readonly redis: Redis) {}

  async send(m: OutboundMessage): Promise<void> {
    const event: WebEvent = { id: m.messageId, seq: m.seq, conversationId: m.conversationId, role: 'assistant', text: m.text, replyTo: m.replyTo, files: fileViews(m.conversationId, m.messageId, m.files ?? []) };
    await this.redis.publish(topic(m.conversationId), JSON.stringify(event));
  }

  status(): ChannelStatus {
    return { name: this.name, state: this.redis.status === 'ready' ? 'connected' : 'disconnected', detail: 'local HTTP API' };
  }

  async stop(): Promise<void> {}
}

/** Fans Redis-published replies out to this process's SSE listeners. One subscriber connection. */
export class WebFanout {
  private readonly listeners = new Map<string, Set<(e: WebEvent) => void>>();

  constructor(private readonly sub: Redis) {
    sub.on('pmessage', (_pattern: string, channel: string, payload: string) => {
      const set = this.listeners.get(channel.slice('bulwark:web:'.length));
      if (!set) return;
      let event: WebEvent;
      try { event = JSON.parse(payload) as WebEvent; } catch { return; }
      for (const fn of set) fn(event);
    });
  }

  async start(): Promise<void> {
    await this.sub.psubscribe('bulwark:web:*');
  }

  listen(conversationId: string, fn: (e: WebEvent) => void): () => void {
    let set = this.listeners.get(conversationId);
    if (!set) this.listeners.set(conversationId, (set = new Set()));
    set.add(fn);
    return () => {
      set!.delete(fn);
      if (set!.size === 0) this.listeners.delete(conversationId);
    };
  }

  get size(): number {
    let n = 0;
    for (const s of this.listeners.values()) n += s.size;
    return n;
  }

  async stop(): Promise<void> {
    this.sub.disconnect();
  }
}
