import { isAbsolute, join, resolve } from 'node:path';
import type { Config } from '../config/schema.js';
import { UserError } from '../errors.js';
import type { Logger } from '../logger.js';
import { createRunCodeTool, loadAgentManifest, ManifestError, Sandbox, SANDBOX_SYSTEM_PROMPT, type Egress } from '../sandbox/index.js';
import { mergeApprovedGrants, type ApprovedGrants } from '../approvals/grants.js';
import { ToolRegistry } from './tools.js';

export interface AgentToolset {
  tools: ToolRegistry;
  /** System prompt additions that explain the tools. */
  promptExtras: string[];
  close(): Promise<void>;
}

/**
 * The tools an agent gets by default: `run_code` (CodeAct in the QuickJS/WASM sandbox) under the
 * grant of the agent's manifest. The sandbox's worker threads start on the first run, so a hub
 * whose model never writes code does not pay for them.
 */
export async function createAgentToolset(config: Config, home: string, logger: Logger, opts: {
  /** Where `tools.http.fetch` goes; the hub passes the vault's egress so secret handles work. */
  egress?: Egress;
  /** Hosts and secrets the owner approved (src/approvals), read at every run and added to the manifest's grant. */
  approvedGrants?: () => Promise<ApprovedGrants>;
} = {}): Promise<AgentToolset> {
  const tools = new ToolRegistry();
  if (!config.agent.run_code) return { tools, promptExtras: [], close: async () => undefined };
  const path = config.agent.manifest ? (isAbsolute(config.agent.manifest) ? config.agent.manifest : resolve(home, config.agent.manifest)) : join(home, 'agent.toml');
  let manifest;
  try {
    manifest = await loadAgentManifest(path);
  } catch (err) {
    if (err instanceof ManifestError) throw new UserError(err.message, `fix ${path} (see README, Sandbox) or set BULWARK_AGENT_MANIFEST`);
    throw err;
  }
  if (manifest.grant.secrets?.length && !opts.egress) {
    // Without the vault's egress a handle would go out as literal text: do not offer handles at all.
    logger.warn({ manifest: path, secrets: manifest.grant.secrets }, 'the manifest grants secrets but no vault egress is wired; secret handles are disabled');
    manifest = { ...manifest, grant: { http: manifest.grant.http, tools: manifest.grant.tools } };
  }
  let sandbox: Sandbox | undefined;
  const lazy = {
    run: async (code: string, runOpts: Parameters<Sandbox['run']>[1] = {}) => {
      const approved = opts.approvedGrants ? await opts.approvedGrants() : undefined;
      const grant = approved && runOpts.grant ? mergeApprovedGrants(runOpts.grant, opts.egress ? approved : { ...approved, secrets: [] }) : runOpts.grant;
      return (sandbox ??= new Sandbox({ logger, egress: opts.egress })).run(code, { ...runOpts, grant });
    },
  };
  tools.register(createRunCodeTool({ sandbox: lazy, grant: manifest.grant, limits: manifest.limits }));
  logger.info({ manifest: path, http: manifest.grant.http, tools: manifest.grant.tools, secrets: manifest.grant.secrets ?? [] }, 'agent capabilities');
  return { tools, promptExtras: [SANDBOX_SYSTEM_PROMPT], close: async () => { await sandbox?.close(); } };
}
