import { pino, type Logger as PinoLogger } from 'pino';

export type Logger = PinoLogger;

/**
 * Paths pino blanks out wherever they appear in a log object. Secrets should never reach a log
 * call at all; this list is the second line of defence for the ones that slip through.
 */
export const REDACT_PATHS = [
  'apiKey', '*.apiKey', 'token', '*.token', 'password', '*.password', 'secret', '*.secret',
  'authorization', '*.authorization', 'headers.authorization', 'headers.cookie', '*.headers.authorization',
  '*.headers.cookie', 'req.headers.authorization', 'req.headers.cookie', 'llm.apiKey', 'config.llm.apiKey',
  'text', '*.text', 'body', '*.body',
];

/** Rewrites a finished log line; installed once the vault is open (see `setLogScrubber`). */
export type LogScrubber = (line: string) => string;
const scrubbers = new WeakMap<object, { fn?: LogScrubber }>();

/**
 * Creates the process logger: JSON lines, or pretty output when stdout is a terminal. Every line
 * passes the logger's scrubber (the leak detector, once the hub has opened the vault) on its way out.
 */
export function createLogger(opts: { level?: string; name?: string; pretty?: boolean; destination?: NodeJS.WritableStream } = {}): Logger {
  const pretty = opts.pretty ?? (process.stdout.isTTY === true && process.env.NODE_ENV !== 'test');
  const holder: { fn?: LogScrubber } = {};
  const logger = pino({
    name: opts.name ?? 'bulwark',
    level: opts.level ?? process.env.BULWARK_LOG_LEVEL ?? 'info',
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    hooks: { streamWrite: (line) => (holder.fn ? holder.fn(line) : line) },
    ...(pretty ? { transport: { target: 'pino-pretty', options: { colorize: true, destination: 2 } } } : {}),
  }, pretty ? undefined : (opts.destination ?? pino.destination(2)));
  scrubbers.set(logger, holder);
  return logger;
}

/** Installs the scrubber of a logger made by createLogger (no-op for others, e.g. silentLogger). */
export function setLogScrubber(logger: Logger, fn: LogScrubber | undefined): void {
  const holder = scrubbers.get(logger);
  if (holder) holder.fn = fn;
}

/** A logger that drops everything; for tests and benchmarks that assert on outcomes, not logs. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
