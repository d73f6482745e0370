import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/*
 * A stand-in for an LLM provider that speaks OpenAI's Chat Completions wire protocol (JSON and
 * streaming SSE, tool calls, usage), so the real AI SDK providers talk to it unchanged. Tests script
 * its answers; every request is recorded.
 */

export interface ChatRequest {
  model: string;
  stream?: boolean;
  messages: Array<{ role: string; content: unknown; tool_calls?: Array<{ id: string; function: { name: string; arguments: string } }>; tool_call_id?: string }>;
  tools?: Array<{ type: 'function'; function: { name: string; description?: string; parameters?: unknown } }>;
  [key: string]: unknown;
}

export type Scripted =
  | { text: string; delayMs?: number; usage?: { prompt: number; completion: number }; /** Streaming: pieces of this size, this far apart (a model writing slowly). */ pace?: { chars: number; everyMs: number } }
  | { toolCalls: Array<{ name: string; args: unknown }>; delayMs?: number }
  | { status: number; body?: unknown; headers?: Record<string, string>; delayMs?: number };

export type Handler = (req: ChatRequest, index: number) => Scripted | Promise<Scripted>;

export interface StandIn {
  /** Base URL to configure as BULWARK_LLM_BASE_URL (ends in /v1). */
  baseUrl: string;
  requests: ChatRequest[];
  authHeaders: Array<string | undefined>;
  setHandler(h: Handler): void;
  close(): Promise<void>;
}

/** The last user message's text: what most scripted handlers answer to. */
export function lastUserText(req: ChatRequest): string {
  const m = [...req.messages].reverse().find((x) => x.role === 'user');
  if (!m) return '';
  if (typeof m.content === 'string') return m.content;
  return (m.content as Array<{ type: string; text?: string }>).map((p) => p.text ?? '').join('');
}

export const echoHandler: Handler = (req) => ({ text: `echo: ${lastUserText(req)}` });

/**
 * A model that files a capability request (grant_host) when told "ask HOST", then answers
 * "Requested ID (status)" from the tool's result; anything else is echoed.
 */
export function requestingHandler(reason: string): Handler {
  return (req) => {
    const m = req.messages.at(-1);
    if (m?.role === 'tool') {
      const r = JSON.parse(typeof m.content === 'string' ? m.content : JSON.stringify(m.content)).untrusted_data;
      return { text: `Requested ${r.id} (${r.status})` };
    }
    const ask = /ask (\S+)/.exec(lastUserText(req));
    if (ask) return { toolCalls: [{ name: 'request_capability', args: { kind: 'grant_host', target: ask[1], reason } }] };
    return echoHandler(req, 0);
  };
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

let counter = 0;

async function respond(res: ServerResponse, req: ChatRequest, s: Exclude<Scripted, { status: number }>): Promise<void> {
  const id = `chatcmpl-${++counter}`;
  const created = Math.floor(Date.now() / 1000);
  const usage = 'text' in s && s.usage ? s.usage : { prompt: 10, completion: 5 };
  const usageJson = { prompt_tokens: usage.prompt, completion_tokens: usage.completion, total_tokens: usage.prompt + usage.completion };
  const toolCalls = 'toolCalls' in s ? s.toolCalls.map((t, i) => ({ index: i, id: `call_${counter}_${i}`, type: 'function', function: { name: t.name, arguments: JSON.stringify(t.args) } })) : undefined;
  const finish = toolCalls ? 'tool_calls' : 'stop';
  if (!req.stream) {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({
      id, object: 'chat.completion', created, model: req.model,
      choices: [{ index: 0, message: { role: 'assistant', content: 'text' in s ? s.text : null, ...(toolCalls ? { tool_calls: toolCalls.map(({ index: _i, ...t }) => t) } : {}) }, finish_reason: finish }],
      usage: usageJson,
    }));
    return;
  }
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  const chunk = (delta: unknown, finishReason: string | null = null) =>
    res.write(`data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model: req.model, choices: [{ index: 0, delta, finish_reason: finishReason }] })}\n\n`);
  chunk({ role: 'assistant', content: '' });
  if ('text' in s) {
    // Split into a few pieces so clients really assemble a stream.
    const size = s.pace?.chars ?? 16;
    const parts = s.text.match(new RegExp(`[\\s\\S]{1,${size}}`, 'g')) ?? [''];
    for (const p of parts) {
      if (res.destroyed) return;
      chunk({ content: p });
      if (s.pace) await new Promise((r) => setTimeout(r, s.pace!.everyMs));
    }
  } else {
    for (const t of toolCalls!) {
      chunk({ tool_calls: [{ index: t.index, id: t.id, type: 'function', function: { name: t.function.name, arguments: '' } }] });
      chunk({ tool_calls: [{ index: t.index, function: { arguments: t.function.arguments } }] });
    }
  }
  chunk({}, finish);
  res.write(`data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model: req.model, choices: [], usage: usageJson })}\n\n`);
  res.end('data: [DONE]\n\n');
}

/** Starts the stand-in on 127.0.0.1 (random port unless given). */
export async function startLlmStandIn(handler: Handler = echoHandler, port = 0): Promise<StandIn> {
  let current = handler;
  const requests: ChatRequest[] = [];
  const authHeaders: Array<string | undefined> = [];
  const server: Server = createServer(async (req, res) => {
    try {
      if (req.method === 'GET' && req.url === '/v1/models') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ object: 'list', data: [{ id: 'standin-model', object: 'model', owned_by: 'test' }] }));
        return;
      }
      if (req.method !== 'POST' || req.url !== '/v1/chat/completions') {
        res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { message: 'not found' } }));
        return;
      }
      const body = JSON.parse(await readBody(req)) as ChatRequest;
      const index = requests.push(body) - 1;
      authHeaders.push(req.headers.authorization);
      const s = await current(body, index);
      if (s.delayMs) {
        // Ends early when the client goes away (a killed worker), so no timer outlives the test.
        await new Promise<void>((r) => { const t = setTimeout(r, s.delayMs); res.once('close', () => { clearTimeout(t); r(); }); });
        if (res.destroyed) return;
      }
      if ('status' in s) {
        res.writeHead(s.status, { 'content-type': 'application/json', ...s.headers });
        res.end(JSON.stringify(s.body ?? { error: { message: `scripted ${s.status}`, type: 'server_error' } }));
        return;
      }
      await respond(res, body, s);
    } catch (err) {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: (err as Error).message } }));
    }
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  const { port: bound } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${bound}/v1`,
    requests,
    authHeaders,
    setHandler: (h) => { current = h; },
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}
