import { z } from 'zod';

/** Where the TOML key lives and which environment variable overrides it. */
export const ENV_KEYS = {
  BULWARK_HOME: 'home',
  BULWARK_HOST: 'server.host',
  BULWARK_PORT: 'server.port',
  BULWARK_BODY_LIMIT: 'server.body_limit',
  BULWARK_ALLOWED_HOSTS: 'server.allowed_hosts',
  REDIS_URL: 'redis.url',
  BULWARK_REDIS_CONNECT_TIMEOUT_MS: 'redis.connect_timeout_ms',
  DATABASE_URL: 'database.url',
  BULWARK_LLM_PROVIDER: 'llm.provider',
  BULWARK_LLM_MODEL: 'llm.model',
  BULWARK_LLM_BASE_URL: 'llm.base_url',
  BULWARK_LLM_API_KEY: 'llm.api_key',
  BULWARK_LLM_TIMEOUT_MS: 'llm.timeout_ms',
  BULWARK_LLM_MAX_RETRIES: 'llm.max_retries',
  BULWARK_LLM_MAX_STEPS: 'llm.max_steps',
  BULWARK_LLM_MAX_TOKENS_PER_TURN: 'llm.max_tokens_per_turn',
  BULWARK_LLM_HISTORY_MESSAGES: 'llm.history_messages',
  BULWARK_LLM_STREAM: 'llm.stream',
  BULWARK_LLM_MAX_CONCURRENT: 'llm.max_concurrent',
  BULWARK_LLM_BREAKER_FAILURES: 'llm.breaker_failures',
  BULWARK_LLM_BREAKER_COOLDOWN_MS: 'llm.breaker_cooldown_ms',
  BULWARK_WORKER_CONCURRENCY: 'worker.concurrency',
  BULWARK_WORKER_LOCK_MS: 'worker.lock_ms',
  BULWARK_WORKER_SHUTDOWN_MS: 'worker.shutdown_ms',
  BULWARK_LOG_LEVEL: 'log.level',
  BULWARK_TIMEZONE: 'routines.timezone',
  BULWARK_ROUTINES_CONCURRENCY: 'routines.concurrency',
  BULWARK_WEBHOOK_MAX_BYTES: 'routines.webhook_max_bytes',
  BULWARK_HEARTBEAT_ENABLED: 'heartbeat.enabled',
  BULWARK_HEARTBEAT_EVERY_MINUTES: 'heartbeat.every_minutes',
  BULWARK_HEARTBEAT_TO: 'heartbeat.to',
  BULWARK_HEARTBEAT_ACTIVE_HOURS: 'heartbeat.active_hours',
  BULWARK_HEARTBEAT_DAILY_TOKEN_CAP: 'heartbeat.daily_token_cap',
  BULWARK_HEARTBEAT_CHECKLIST: 'heartbeat.checklist',
  BULWARK_AGENT_MANIFEST: 'agent.manifest',
  BULWARK_AGENT_RUN_CODE: 'agent.run_code',
  BULWARK_CHROMIUM: 'channels.whatsapp.chromium_path',
  BULWARK_AUDIT_KEY: 'audit.key',
  BULWARK_AUDIT_KEY_FILE: 'audit.key_file',
  BULWARK_APPROVALS_RULES: 'approvals.rules',
  BULWARK_CONFIG: '(path of the config file)',
} as const;

const wholeNumber = (min: number, max: number) =>
  z.coerce.number({ error: `must be a whole number from ${min} to ${max}` }).int(`must be a whole number from ${min} to ${max}`).min(min, `must be at least ${min}`).max(max, `must be at most ${max}`);
const port = wholeNumber(0, 65535);
/** A boolean from TOML, or from an environment variable written as true/false/1/0. */
const flag = z.union([z.boolean(), z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1')]);
const positiveInt = (max: number) => wholeNumber(1, max);

export const serverSchema = z.strictObject({
  /** Loopback by default: the admin surface is not for the network unless the owner says so. */
  host: z.string().min(1).default('127.0.0.1'),
  port: port.default(8787),
  /** Largest accepted HTTP request body, bytes. */
  body_limit: positiveInt(10 * 1024 * 1024).default(64 * 1024),
  /**
   * Host names the hub answers to besides loopback names and IP addresses (a reverse proxy's public
   * name; '.example.com' allows its subdomains). Other Host headers get 421: a DNS-rebinding page
   * sends its own name. From the environment: a comma-separated list.
   */
  allowed_hosts: z.preprocess(
    (v) => (typeof v === 'string' ? v.split(',').map((h) => h.trim()).filter(Boolean) : v),
    z.array(z.string().max(253).regex(/^\.?[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$/, 'must be a host name such as bulwark.example.com or .example.com (no scheme, no port)')).max(100),
  ).default([]),
});

export const llmSchema = z.strictObject({
  provider: z.enum(['openai', 'anthropic', 'openai-compatible']).optional(),
  model: z.string().min(1).optional(),
  base_url: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL such as http://127.0.0.1:11434/v1' }).optional(),
  api_key: z.string().min(1).optional(),
  timeout_ms: positiveInt(600_000).default(60_000),
  max_retries: wholeNumber(0, 10).default(2),
  max_steps: positiveInt(50).default(8),
  max_tokens_per_turn: positiveInt(2_000_000).default(32_000),
  history_messages: positiveInt(1000).default(40),
  system_prompt: z.string().max(20_000).optional(),
  /** Stream tokens from the provider. Off by default: replies are delivered whole, and the
   * non-streaming path costs the hub less CPU per turn. */
  stream: flag.default(false),
  /** LLM calls in flight at once per worker process; more wait, served round-robin across conversations. */
  max_concurrent: positiveInt(10_000).default(64),
  /** Failed calls in a row (errors, timeouts) that open the model's circuit breaker; 0 = never. */
  breaker_failures: wholeNumber(0, 1000).default(5),
  /** How long an open breaker answers at once, before one probe call tries the model again. */
  breaker_cooldown_ms: wholeNumber(1000, 3_600_000).default(30_000),
});


/** An IANA time zone name that this Node's Intl knows, e.g. Europe/Berlin or America/New_York. */
export const timeZoneSchema = z.string().refine((tz) => {
  if (/^[+-]\d/.test(tz)) return false;
  try { new Intl.DateTimeFormat('en-US', { timeZone: tz }); return true; } catch { return false; }
}, 'must be an IANA time zone name such as Europe/Berlin, America/New_York or UTC')
  // Stored and shown in its canonical spelling (europe/berlin → Europe/Berlin, US/Eastern → America/New_York).
  .transform((tz) => new Intl.DateTimeFormat('en-US', { timeZone: tz }).resolvedOptions().timeZone);

/** "HH:MM-HH:MM" in the owner's time zone (may wrap midnight), or "always". */
export const activeHoursSchema = z.string().regex(/^(always|([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-4]):[0-5]\d)$/, 'must be "HH:MM-HH:MM" (24-hour clock, e.g. 08:00-22:00; may wrap midnight) or "always"');

export const routinesSchema = z.strictObject({
  /** The owner's time zone: cron routines without --tz use it. No default: never a silent UTC. */
  timezone: timeZoneSchema.optional(),
  /** Defaults for new routines' budgets (each routine can set its own). */
  max_tokens_per_run: positiveInt(2_000_000).default(16_000),
  max_tokens_per_day: positiveInt(100_000_000).default(100_000),
  /** Routine runs at once per scheduler process (one routine never overlaps itself). */
  concurrency: positiveInt(64).default(4),
  /** How often a scheduler re-reads the routines table into Redis (changes made while no hub ran). */
  sync_seconds: positiveInt(3600).default(30),
  /** Largest webhook body accepted (it reaches the model, so it costs tokens). */
  webhook_max_bytes: positiveInt(1024 * 1024).default(16 * 1024),
});

export const heartbeatSchema = z.strictObject({
  enabled: flag.default(false),
  every_minutes: positiveInt(1440).default(30),
  /** The checklist the agent reviews; default $BULWARK_HOME/HEARTBEAT.md. */
  checklist: z.string().min(1).optional(),
  active_hours: activeHoursSchema.default('08:00-22:00'),
  /** Tokens all of the owner's heartbeat runs may use per day (in the owner's time zone). */
  daily_token_cap: positiveInt(100_000_000).default(50_000),
  max_tokens_per_run: positiveInt(2_000_000).default(8_000),
  /** Where notifications go: CHANNEL:CHAT or CHANNEL:ACCOUNT:CHAT, e.g. web:c_AbC123… */
  to: z.string().regex(/^[a-z][a-z0-9-]{0,31}:[^\s]+$/, 'must be CHANNEL:CHAT or CHANNEL:ACCOUNT:CHAT, e.g. web:c_AbC123 (the web chat shows its conversation id)').optional(),
});

/** A platform user/chat id: TOML may write Telegram's numeric ids as numbers. */
const platformIds = z.array(z.union([z.string().min(1).max(128), z.number().int()]).transform(String)).max(10_000).default([]);
const httpUrl = z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' });

/** Shared by every chat channel: who may talk to the bot, where, and how fast it may answer. */
const chatChannel = {
  enabled: flag.default(false),
  /** Platform user ids always allowed (and allowed to approve pairing from the chat in future). */
  owners: platformIds,
  /** Platform user ids allowed besides the owners and the paired senders. Empty = nobody else. */
  allow: platformIds,
  /** Group/channel ids the bot may answer in (when mentioned). Empty = no groups. */
  groups: platformIds,
  /** In an enabled group: "anyone" (members may mention the bot) or "allowlist" (owners/allow/paired only). */
  group_senders: z.enum(['anyone', 'allowlist']).default('anyone'),
  /** Unknown DM senders get a pairing code the owner can approve; off = they are ignored. */
  pairing: flag.default(true),
  /** The pairing prompt is sent to one sender at most once per this many minutes. */
  pairing_prompt_minutes: positiveInt(1440).default(10),
  /** Minimum gap between two messages to one chat, and messages per second over all chats. */
  rate_per_chat_ms: wholeNumber(0, 60_000).default(1000),
  rate_global_per_s: positiveInt(10_000).default(30),
  /**
   * Link previews / unfurls of what the bot sends. Off by default: a platform's preview fetcher
   * requests any URL in a reply, so a tricked model could put the user's data into a link and have
   * it delivered to any host, with no grant and no audit entry. Turn on only if you accept that.
   */
  link_previews: flag.default(false),
};

export const channelsSchema = z.strictObject({
  telegram: z.strictObject({
    ...chatChannel,
    mode: z.enum(['polling', 'webhook']).default('polling'),
    /** Webhook mode: the hub's path Telegram posts to (the public URL is set with setWebhook by you or `webhook_url`). */
    webhook_path: z.string().regex(/^\/[A-Za-z0-9/_-]{1,100}$/, 'must be a path such as /telegram/webhook').default('/telegram/webhook'),
    webhook_url: z.url({ protocol: /^https$/, error: 'must be the public https URL Telegram should post to' }).optional(),
    /** Bot API server (tests, or a self-hosted Bot API server). */
    api_root: httpUrl.optional(),
    poll_timeout_s: wholeNumber(0, 50).default(30),
    /** Long answers appear while the model writes them: one message, edited about once a second (the final text replaces it). */
    stream_replies: flag.default(true),
  }).prefault({}),
  slack: z.strictObject({
    ...chatChannel,
    rate_per_chat_ms: wholeNumber(0, 60_000).default(1100),
    rate_global_per_s: positiveInt(10_000).default(20),
    mode: z.enum(['socket', 'http']).default('socket'),
    /** HTTP mode: the hub path Slack posts events to. */
    events_path: z.string().regex(/^\/[A-Za-z0-9/_-]{1,100}$/, 'must be a path such as /slack/events').default('/slack/events'),
    /** Web API base, ending in /api/ (tests). */
    api_url: httpUrl.optional(),
  }).prefault({}),
  discord: z.strictObject({
    ...chatChannel,
    rate_per_chat_ms: wholeNumber(0, 60_000).default(1000),
    rate_global_per_s: positiveInt(10_000).default(40),
    /** REST API base such as http://127.0.0.1:PORT/api (tests). */
    api_url: httpUrl.optional(),
  }).prefault({}),
  whatsapp: z.strictObject({
    ...chatChannel,
    rate_per_chat_ms: wholeNumber(0, 60_000).default(1500),
    rate_global_per_s: positiveInt(10_000).default(5),
    /** Chromium for whatsapp-web.js; default the system's /usr/bin/chromium. */
    chromium_path: z.string().min(1).optional(),
  }).prefault({}),
});
export type ChannelsConfig = z.infer<typeof channelsSchema>;

export const configSchema = z.strictObject({
  home: z.string().min(1).default('.bulwark'),
  server: serverSchema.default(serverSchema.parse({})),
  redis: z.strictObject({
    url: z.string().regex(/^(rediss?:\/\/|redis\+unix:\/\/\/)/, 'must be redis://[:password@]host:port[/db], rediss://… (TLS) or redis+unix:///path/to/redis.sock').optional(),
    /** How long start-up waits for Redis to answer before it gives up with "cannot reach Redis". */
    connect_timeout_ms: positiveInt(600_000).default(10_000),
  }).default({ connect_timeout_ms: 10_000 }),
  database: z.strictObject({
    url: z.string().regex(/^(file:|postgres(ql)?:\/\/)/, 'must be file:PATH (SQLite) or postgres://user:pass@host/db').optional(),
  }).default({}),
  llm: llmSchema.default(llmSchema.parse({})),
  worker: z.strictObject({
    /** Turns processed at once per worker process (one per conversation). Turns mostly wait on
     * the model, so this is high; llm.max_concurrent caps the model calls themselves. */
    concurrency: positiveInt(10_000).default(256),
    /** How long a worker's claim on a job lasts without renewal; a killed worker's job is retried after it. */
    lock_ms: positiveInt(600_000).default(30_000),
    /** How long SIGTERM waits for in-flight turns before handing them back to the queue. */
    shutdown_ms: positiveInt(600_000).default(20_000),
  }).default({ concurrency: 256, lock_ms: 30_000, shutdown_ms: 20_000 }),
  agent: z.strictObject({
    /** The agent's capability manifest (TOML: [capabilities], [limits]); missing file = no network. */
    manifest: z.string().min(1).optional(),
    /** Offer the model the run_code tool (JavaScript in the QuickJS/WASM sandbox). */
    run_code: flag.default(true),
  }).default({ run_code: true }),
  log: z.strictObject({
    level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  }).default({ level: 'info' }),
  routines: routinesSchema.default(routinesSchema.parse({})),
  heartbeat: heartbeatSchema.default(heartbeatSchema.parse({})),
  /** The audit log (src/audit/): checkpoint interval and the checkpoints' signing key (never in the database). */
  audit: z.strictObject({
    /** HMAC key for checkpoints, as text (prefer key_file; the environment is visible to child processes). */
    key: z.string().min(16, 'must be at least 16 characters (e.g. `openssl rand -base64 32`)').optional(),
    /** A file (mode 0600) holding the HMAC key for checkpoints. */
    key_file: z.string().min(1).optional(),
    /** A checkpoint of the chain's head is written every this many entries (and at shutdown). */
    checkpoint_every: positiveInt(1_000_000).default(100),
  }).default({ checkpoint_every: 100 }),
  /** The approval gateway (src/approvals/): rule file and how long a request waits for a human. */
  approvals: z.strictObject({
    /** The rule file (TOML); default $BULWARK_HOME/approvals.toml. */
    rules: z.string().min(1).optional(),
    expiry_hours: positiveInt(24 * 30).default(24),
  }).default({ expiry_hours: 24 }),
  channels: channelsSchema.prefault({}),
}).superRefine((c, ctx) => {
  // The heartbeat needs somewhere to speak, and its active hours need a clock to be read on.
  if (!c.heartbeat.enabled) return;
  if (!c.heartbeat.to) ctx.addIssue({ code: 'custom', path: ['heartbeat', 'to'], message: 'is required when heartbeat.enabled is true: set BULWARK_HEARTBEAT_TO=web:<conversation id> (or CHANNEL:ACCOUNT:CHAT)' });
  if (c.heartbeat.active_hours !== 'always' && !c.routines.timezone) {
    ctx.addIssue({ code: 'custom', path: ['routines', 'timezone'], message: 'is required for the heartbeat\'s active hours: set BULWARK_TIMEZONE to your IANA time zone (e.g. Europe/Berlin), or heartbeat.active_hours = "always"' });
  }
});

export type Config = z.infer<typeof configSchema>;
export type LlmConfig = Config['llm'];
export type RoutinesConfig = Config['routines'];
export type HeartbeatConfig = Config['heartbeat'];
