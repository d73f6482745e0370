import type { App, SocketModeReceiver } from '@slack/bolt';
import { z } from 'zod';
import type { Logger } from '../../logger.js';
import { backoffMs, sleep, type ConnectionState } from '../connection.js';
import { describeSlackError, isAuthError } from './errors.js';

/*
 * Socket Mode on top of Bolt's SocketModeReceiver, with three things changed:
 *
 * 1. Ack after accept. Bolt acks an event before any listener runs, so a crash between the ack and
 *    Inbox.accept would lose the message. Here the ack Bolt asks for is held until processEvent has
 *    finished (the message is in Redis); if a listener throws (Redis down), no ack goes out and Slack
 *    redelivers the envelope, which the Inbox then dedupes.
 * 2. Our own reconnect loop. The client's built-in one treats a network error while fetching a new
 *    socket URL as unrecoverable, rejects a promise nobody awaits (an unhandled rejection) and stays
 *    down for good. We run the client with auto-reconnect off and reconnect with backoff and jitter,
 *    stopping only on a token error (with one clear status line, no loop).
 * 3. Envelopes are validated before the client looks inside them (a payload without `event` would
 *    otherwise throw inside the client's message handler, an unhandled rejection).
 */

type SocketClient = SocketModeReceiver['client'];

/** A connection that lasted this long resets the reconnect backoff. */
const STABLE_MS = 60_000;

const envelopeSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('hello') }).passthrough(),
  z.object({ type: z.literal('disconnect') }).passthrough(),
  z.object({ type: z.literal('events_api'), envelope_id: z.string().min(1), payload: z.object({ event: z.object({ type: z.string() }).passthrough() }).passthrough() }).passthrough(),
  z.object({ type: z.enum(['slash_commands', 'interactive']), envelope_id: z.string().min(1), payload: z.object({}).passthrough() }).passthrough(),
]);

export interface SocketOptions {
  receiver: SocketModeReceiver;
  app: App;
  state: ConnectionState;
  logger: Logger;
  /** First reconnect delay; doubles up to maxDelayMs, with jitter. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** How long to wait for Slack's hello after opening the socket. */
  helloTimeoutMs: number;
}

export class SlackSocket {
  private readonly client: SocketClient;
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;
  /** Connections made so far (reconnects add up); shown in the status detail. */
  connections = 0;

  constructor(private readonly o: SocketOptions) {
    this.client = o.receiver.client;
    this.deferAcks();
    this.validateEnvelopes();
    // The client logs its own errors; this only keeps an 'error' emit from being unhandled.
    this.client.on('error', () => undefined);
  }

  /** Connects; resolves once connected, or when the connection failed for good (see state). */
  start(): Promise<void> {
    return new Promise((resolve) => {
      this.loop = this.run(resolve);
    });
  }

  async stop(): Promise<void> {
    this.abort.abort();
    const bounded = <T>(p: Promise<T>) => Promise.race([p, sleep(3_000)]);
    await bounded(this.client.disconnect().catch(() => undefined));
    await bounded(this.loop ?? Promise.resolve());
  }

  private async run(firstOutcome: () => void): Promise<void> {
    let attempt = 0;
    while (!this.abort.signal.aborted) {
      this.o.state.connecting(attempt === 0 ? 'opening the Socket Mode connection' : `reconnecting the Socket Mode connection (attempt ${attempt})`);
      let onClose: () => void = () => undefined;
      const closed = new Promise<void>((r) => { onClose = r; });
      this.client.once('disconnected', onClose);
      try {
        await this.connectOnce();
        const connectedAt = Date.now();
        this.connections += 1;
        this.o.state.connected(`Socket Mode (connection ${this.connections})`);
        firstOutcome();
        await new Promise<void>((resolve) => {
          // Removed again: one listener per connection would pile up on the signal over reconnects.
          const done = () => { this.abort.signal.removeEventListener('abort', done); resolve(); };
          this.abort.signal.addEventListener('abort', done, { once: true });
          void closed.then(done);
        });
        if (this.abort.signal.aborted) return;
        // Only a connection that held counts as recovered: one Slack drops right after hello backs off further.
        if (Date.now() - connectedAt >= STABLE_MS) attempt = 0;
        this.o.state.disconnected('the Socket Mode connection closed; reconnecting');
      } catch (err) {
        this.client.removeListener('disconnected', onClose);
        if (this.abort.signal.aborted) return;
        if (isAuthError(err)) {
          this.o.state.error(`Socket Mode: ${describeSlackError(err)}`);
          firstOutcome();
          return;
        }
        this.o.state.disconnected(`Socket Mode: ${describeSlackError(err)}`);
        firstOutcome();
      }
      await sleep(backoffMs(attempt, this.o.baseDelayMs, this.o.maxDelayMs), this.abort.signal);
      attempt += 1;
    }
  }

  private async connectOnce(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no hello from Slack within ${this.o.helloTimeoutMs} ms`)), this.o.helloTimeoutMs);
    });
    const started = this.client.start();
    try {
      await Promise.race([started, timeout]);
    } catch (err) {
      started.catch(() => undefined);
      if (!isAuthError(err)) await Promise.race([this.client.disconnect().catch(() => undefined), sleep(1_000)]);
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  private deferAcks(): void {
    const { app, logger } = this.o;
    this.client.removeAllListeners('slack_event');
    this.client.on('slack_event', async (args: { ack: (r?: unknown) => Promise<void>; body: Record<string, unknown>; retry_num?: number; retry_reason?: string }) => {
      let response: unknown;
      let acked = false;
      const event = {
        body: args.body,
        ack: async (r?: unknown) => { if (!acked) { acked = true; response = r; } },
        ...(args.retry_num !== undefined ? { retryNum: args.retry_num } : {}),
        ...(args.retry_reason !== undefined ? { retryReason: args.retry_reason } : {}),
        customProperties: {},
      };
      try {
        await app.processEvent(event);
      } catch (err) {
        // Not acked: Slack redelivers, and the Inbox drops whatever was already taken.
        logger.warn({ channel: 'slack', err: (err as Error).message }, 'could not take a Slack event; leaving it unacknowledged so Slack redelivers it');
        return;
      }
      await args.ack(response).catch((err: Error) => logger.warn({ channel: 'slack', err: err.message }, 'could not acknowledge a Slack event'));
    });
  }

  private validateEnvelopes(): void {
    const { logger } = this.o;
    const client = this.client as unknown as { onWebSocketMessage(data: string | ArrayBuffer, isBinary: boolean): Promise<void> };
    this.client.removeAllListeners('ws_message');
    this.client.on('ws_message', (data: string | ArrayBuffer, isBinary: boolean) => {
      if (isBinary) return;
      const text = typeof data === 'string' ? data : new TextDecoder().decode(data);
      let parsed: unknown;
      try { parsed = JSON.parse(text); } catch { parsed = undefined; }
      const ok = envelopeSchema.safeParse(parsed);
      if (!ok.success) {
        logger.warn({ channel: 'slack', problem: ok.error.issues[0]?.message, path: ok.error.issues[0]?.path.join('.') }, 'dropped a malformed Socket Mode message');
        // Ack what has an envelope id so Slack does not resend the same junk.
        const id = (parsed as { envelope_id?: unknown } | undefined)?.envelope_id;
        if (typeof id === 'string' && id) (this.client as unknown as { send(id: string, body: object): Promise<void> }).send(id, {}).catch(() => undefined);
        return;
      }
      client.onWebSocketMessage(text, false).catch((err: Error) => logger.warn({ channel: 'slack', err: err.message }, 'Socket Mode message failed'));
    });
  }
}
