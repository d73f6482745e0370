import type { OutboundQueues } from '../queues.js';
import { isAbsolute, join, resolve } from 'node:path';
import type { AgentToolset } from '../agent/codeact.js';
import { AuditLog, loadAuditKey } from '../audit/index.js';
import { recordStartup } from '../audit/startup.js';
import type { Config } from '../config/schema.js';
import type { TextCipher } from '../conversations/cipher.js';
import type { ConversationStore } from '../conversations/store.js';
import type { Db } from '../db/client.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { OutboundGuard } from '../vault/guard.js';
import type { SecretSource } from '../vault/source.js';
import { ApprovalGateway } from './gateway.js';
import { conversationNotifier } from './notify.js';
import { loadRules, type Rule } from './rules.js';
import { secretHostCheck } from './secret-check.js';
import { ApprovalStore } from './store.js';
import { createRequestCapabilityTool, REQUEST_CAPABILITY_PROMPT } from './tool.js';
import { DEFAULT_AGENT, type ApprovalRequest } from './types.js';

/** The gateway that also announces requests left for a human (the owners' DMs); a failed announcement is logged, the request stands. */
class AnnouncingGateway extends ApprovalGateway {
  constructor(opts: ConstructorParameters<typeof ApprovalGateway>[0], private readonly announce: (req: ApprovalRequest) => Promise<void>, private readonly log: Logger) { super(opts); }

  override async request(input: Parameters<ApprovalGateway['request']>[0]): Promise<ApprovalRequest> {
    const req = await super.request(input);
    if (req.state === 'pending') await this.announce(req).catch((err: Error) => this.log.warn({ err: err.message, request: req.id }, 'could not queue the owners\' notification (the request waits in `bulwark approvals list`)'));
    return req;
  }
}

export interface ControlPlane {
  audit: AuditLog;
  gateway: ApprovalGateway;
  /** What the owner approved for the agent, for its sandbox runs. */
  approvedGrants: () => ReturnType<ApprovalStore['grants']>;
  /** Gives an agent toolset the request_capability tool (worker roles). */
  offerTool(toolset: Pick<AgentToolset, 'tools' | 'promptExtras'>): void;
  close(): Promise<void>;
}

/**
 * The hub's audit log and approval gateway, built once per process. A broken rule file stops the
 * start (the owner learns at once); edited later, it is re-read on every request, and a file that
 * no longer parses makes requests ask a human instead of being decided by half a policy.
 */
export async function createControlPlane(deps: {
  db: Db; home: string; config: Config; role: string; vault: SecretSource; store: ConversationStore; outbound: OutboundQueues; cipher: TextCipher; metrics: Metrics; logger: Logger;
  /** The hub's leak guard (vault secrets and the LLM key): audit fields that hold a secret are redacted. */
  leaks: OutboundGuard;
  /** Called for each request that waits for a human (the hub queues the owners' DMs). */
  onPending?: ((req: ApprovalRequest) => Promise<void>) | undefined;
}): Promise<ControlPlane> {
  const { db, home, config, logger } = deps;
  const audit = new AuditLog(db, {
    home, key: loadAuditKey(config.audit, home), checkpointEvery: config.audit.checkpoint_every, logger,
    onFailure: () => deps.metrics.errors.inc({ where: 'audit' }),
    holdsSecret: async (s) => (await deps.leaks(s)).findings.length > 0,
  });
  const rulesPath = config.approvals.rules ? (isAbsolute(config.approvals.rules) ? config.approvals.rules : resolve(home, config.approvals.rules)) : join(home, 'approvals.toml');
  loadRules(rulesPath);
  const rules = (): Rule[] => {
    try {
      return loadRules(rulesPath);
    } catch (err) {
      logger.warn({ err: (err as Error).message }, 'the approvals rule file does not parse: every request asks a human until it is fixed');
      return [];
    }
  };
  const approvals = new ApprovalStore(db);
  const gatewayOptions = {
    store: approvals, audit: audit.durable, rules, checkSecretHost: secretHostCheck(deps.vault),
    notify: conversationNotifier({ db, store: deps.store, outbound: deps.outbound, cipher: deps.cipher }),
    expiryMs: config.approvals.expiry_hours * 3_600_000, logger,
  };
  const gateway = deps.onPending ? new AnnouncingGateway(gatewayOptions, deps.onPending, logger) : new ApprovalGateway(gatewayOptions);
  const sweep = setInterval(() => { gateway.expireDue().catch((err: Error) => logger.warn({ err: err.message }, 'could not expire approval requests')); }, 60_000);
  sweep.unref();
  await recordStartup(audit, db, { role: deps.role, config });
  return {
    audit, gateway,
    approvedGrants: () => approvals.grants(DEFAULT_AGENT),
    offerTool(toolset) {
      if (toolset.tools.get('request_capability')) return;
      // Tool calls (run_code: sandbox runs and their typed errors) go to the audit log: names and outcomes only.
      toolset.tools.onCall((c) => audit.record({ kind: 'tool.called', actor: `agent:${DEFAULT_AGENT}`, subject: c.conversationId, data: { tool: c.tool, ok: c.ok, errorKind: c.errorKind ?? null, ms: c.ms } }));
      toolset.tools.register(createRequestCapabilityTool(gateway, DEFAULT_AGENT));
      toolset.promptExtras.push(REQUEST_CAPABILITY_PROMPT);
    },
    close: async () => { clearInterval(sweep); await audit.close(); },
  };
}
