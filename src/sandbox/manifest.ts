import { readFile } from 'node:fs/promises';
import { parse, TomlError } from 'smol-toml';
import { z } from 'zod';
import { NO_CAPABILITIES, normalizeGrant, parseHttpGrant, SECRET_NAME, TOOL_NAME, type CapabilityGrant } from './grant.js';
import { DEFAULT_LIMITS, LIMIT_BOUNDS, resolveLimits, type Limits } from './limits.js';

/** What an agent's manifest grants its sandbox runs: capabilities and resource limits. */
export interface AgentManifest {
  grant: CapabilityGrant;
  limits: Limits;
}

/** A manifest that cannot be used; the message names the file, the key, and the fix. */
export class ManifestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ManifestError';
  }
}

/** The defaults when an agent has no manifest: computation only, default limits. */
export const DEFAULT_MANIFEST: Readonly<AgentManifest> = Object.freeze({ grant: NO_CAPABILITIES, limits: DEFAULT_LIMITS });

// TOML key → Limits field. Snake case in files, camel case in code.
const LIMIT_KEYS = {
  memory_mb: 'memoryMb',
  timeout_ms: 'timeoutMs',
  stack_kb: 'stackKb',
  output_bytes: 'outputBytes',
  host_calls: 'hostCalls',
  host_call_bytes: 'hostCallBytes',
  concurrent_requests: 'concurrentRequests',
} as const satisfies Record<string, keyof Limits>;

const limitField = (field: keyof Limits) => z.number().int().min(LIMIT_BOUNDS[field][0]).max(LIMIT_BOUNDS[field][1]);

const manifestSchema = z.object({
  capabilities: z.object({
    http: z.array(z.string()).max(256).optional(),
    tools: z.array(z.string().regex(TOOL_NAME, 'must be a dotted lower-case tool name such as "memory.search"')).max(256).optional(),
    secrets: z.array(z.string().regex(SECRET_NAME, 'must be a vault secret name such as "GITHUB_TOKEN"')).max(64).optional(),
  }).strict().optional(),
  limits: z.object(Object.fromEntries(
    Object.entries(LIMIT_KEYS).map(([key, field]) => [key, limitField(field).optional()]),
  ) as Record<keyof typeof LIMIT_KEYS, z.ZodOptional<z.ZodNumber>>).strict().optional(),
}).strict();

const EXAMPLE = '[capabilities]\nhttp = ["api.github.com"]\n\n[limits]\nmemory_mb = 32\ntimeout_ms = 2000';

/**
 * Parses an agent manifest (TOML). Unknown keys are errors, not ignored, because a misspelled
 * limit silently falling back to a default is how a budget gets lost. Missing keys take the
 * conservative defaults: no network, no tools, `DEFAULT_LIMITS`.
 */
export function grantFromManifest(tomlText: string, source = 'agent manifest'): AgentManifest {
  let data: unknown;
  try {
    data = parse(tomlText);
  } catch (err) {
    const where = err instanceof TomlError ? ` (line ${err.line}, column ${err.column})` : '';
    throw new ManifestError(`${source} is not valid TOML${where}: ${(err as Error).message.split('\n')[0]}`);
  }
  const parsed = manifestSchema.safeParse(data);
  if (!parsed.success) throw new ManifestError(`${source}: ${describeIssue(parsed.error.issues[0])}`);
  const http = parsed.data.capabilities?.http ?? [];
  http.forEach((entry, i) => {
    try {
      parseHttpGrant(entry);
    } catch (err) {
      throw new ManifestError(`${source}: [capabilities].http[${i}]: ${(err as Error).message}`);
    }
  });
  let grant: CapabilityGrant;
  try {
    grant = normalizeGrant({ http, tools: parsed.data.capabilities?.tools ?? [], secrets: parsed.data.capabilities?.secrets ?? [] });
  } catch (err) {
    throw new ManifestError(`${source}: [capabilities]: ${(err as Error).message}`);
  }
  const limits: Partial<Limits> = {};
  for (const [key, value] of Object.entries(parsed.data.limits ?? {})) {
    if (value !== undefined) limits[LIMIT_KEYS[key as keyof typeof LIMIT_KEYS]] = value;
  }
  return { grant, limits: resolveLimits(limits) };
}

/** Reads an agent's manifest file; a missing file means the defaults (no network). */
export async function loadAgentManifest(path: string): Promise<AgentManifest> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { grant: NO_CAPABILITIES, limits: { ...DEFAULT_LIMITS } };
    throw new ManifestError(`cannot read agent manifest ${path}: ${(err as Error).message}`);
  }
  return grantFromManifest(text, `agent manifest ${path}`);
}

function describeIssue(issue: z.core.$ZodIssue | undefined): string {
  if (!issue) return 'invalid manifest';
  const [table, key, index] = issue.path.map(String);
  const where = key === undefined ? (table ? `[${table}]` : 'the top level') : `[${table}].${key}${index !== undefined ? `[${index}]` : ''}`;
  switch (issue.code) {
    case 'unrecognized_keys': {
      const known = table === 'capabilities' ? 'http, tools, secrets' : table === 'limits' ? Object.keys(LIMIT_KEYS).join(', ') : '[capabilities], [limits]';
      return `${issue.keys.map((k) => `"${k}"`).join(', ')} in ${where} ${issue.keys.length > 1 ? 'are not known keys' : 'is not a known key'}; known keys: ${known}. Example:\n${EXAMPLE}`;
    }
    case 'too_small':
    case 'too_big': {
      const field = key ? LIMIT_KEYS[key as keyof typeof LIMIT_KEYS] : undefined;
      if (field) return `${where} must be an integer from ${LIMIT_BOUNDS[field][0]} to ${LIMIT_BOUNDS[field][1]}`;
      return `${where}: ${issue.message}`;
    }
    case 'invalid_type':
      return `${where} must be ${issue.expected === 'array' ? 'a list of strings' : issue.expected === 'object' ? 'a table' : `a ${issue.expected === 'int' ? 'whole number' : issue.expected}`}; fix its value. Example:\n${EXAMPLE}`;
    default:
      return `${where}: ${issue.message}`;
  }
}
