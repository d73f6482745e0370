import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { lastUserText, startLlmStandIn, type ChatRequest, type StandIn } from './support/llm-standin.js';
import { startRedis, type Service } from './support/services.js';
import { standInEnv } from './support/hub.js';
import { slashCommand, startSlackStandIn, type SlackStandIn } from './support/slack-standin.js';
import { GENERAL, OWNER, slackCheck, startSlackHub, until, type Running } from './support/slack-hub.js';

/*
 * `/bulwark approve ID` and `/bulwark deny ID` on Slack go through the same core as Telegram's
 * /approve: the real Bolt app in Socket Mode, the Slack stand-in, the hub and a scripted model.
 */
describe('Slack: owners decide capability requests with /bulwark approve|deny ID', () => {
  let redis: Service;
  let llm: StandIn;
  let slack: SlackStandIn;
  let t: Running;

  const lastTool = (req: ChatRequest) => {
    const m = req.messages.at(-1);
    return m?.role === 'tool' ? JSON.parse(typeof m.content === 'string' ? m.content : JSON.stringify(m.content)).untrusted_data : undefined;
  };
  async function ask(host: string): Promise<string> {
    const sent = await t.api.send(`ask ${host}`);
    const reply = await t.api.waitReply(sent.conversationId, sent.messageId);
    const id = /Requested (apr_[a-z2-9]{8})/.exec(reply.text)?.[1];
    assert.ok(id, reply.text);
    return id;
  }
  const stateOf = async (id: string) => (await t.api.request('GET', `/api/approvals/${id}`)).json.state;
  const slash = async (user: string, channel: string, text: string) => String(((await slack.sendSlashCommand(slashCommand({ user_id: user, channel_id: channel, text }))).payload as { text?: string }).text);

  before(async () => {
    redis = await startRedis();
    llm = await startLlmStandIn((req) => {
      const tool = lastTool(req);
      if (tool?.id) return { text: `Requested ${tool.id}. /approve ${tool.id}` };
      const m = /ask (\S+)/.exec(lastUserText(req));
      if (m) return { toolCalls: [{ name: 'request_capability', args: { kind: 'grant_host', target: m[1], reason: 'needed' } }] };
      return { text: `echo: ${lastUserText(req)}` };
    });
    slack = await startSlackStandIn();
    const toml = `[channels.slack]\nenabled = true\napi_url = "${slack.apiUrl}"\nowners = ["${OWNER}"]\ngroups = ["${GENERAL}"]\nrate_per_chat_ms = 0\n`;
    t = await startSlackHub({ redisUrl: redis.url, env: { ...standInEnv(llm.baseUrl), BULWARK_WORKER_SHUTDOWN_MS: '300' }, toml });
    await until('slack connected', async () => (await slackCheck(t.hub.url)).ok);
  });
  after(async () => { await t?.close(); await slack?.close(); await llm?.close(); await redis?.stop(); });

  it('a channel member is refused (and nothing reaches the agent); the owner approves from the DM', async () => {
    const id = await ask('slack-approve.example');
    const dm = await until('the owner told in the app DM', () => slack.callsOf('chat.postMessage').find((c) => c.args.channel === OWNER && String(c.args.text).includes(id)));
    assert.match(String(dm.args.text), new RegExp(`^Approval request ${id}\nChange: let agent "default" reach slack-approve\\.example`));
    assert.ok(String(dm.args.text).endsWith(`Decide with /bulwark approve ${id} or /bulwark deny ${id}.`));
    const turns = llm.requests.length;
    assert.match(await slash('UMEMBER1', GENERAL, `approve ${id}`), /^Not done: only an owner may approve/);
    assert.equal(await stateOf(id), 'pending');
    assert.match(await slash(OWNER, 'DOWNER01', `approve ${id}`), new RegExp(`^Approved: ${id} applied: let agent "default" reach slack-approve\\.example`));
    assert.equal(await stateOf(id), 'applied');
    assert.equal(llm.requests.length, turns, 'the commands never became agent turns');
  });

  it('the owner denies', async () => {
    const id = await ask('slack-deny.example');
    assert.match(await slash(OWNER, 'DOWNER01', `deny ${id}`), new RegExp(`^Denied: ${id} denied`));
    assert.equal(await stateOf(id), 'denied');
  });
});
