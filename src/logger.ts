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

/** Creates the process logger: JSON lines, or pretty output when stdout is a terminal. */
export function createLogger(opts: { level?: string; name?: string; pretty?: boolean } = {}): Logger {
  const pretty = opts.pretty ?? (process.stdout.isTTY === true && process.env.NODE_ENV !== 'test');
  return pino({
    name: opts.name ?? 'bulwark',
    level: opts.level ?? process.env.BULWARK_LOG_LEVEL ?? 'info',
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    ...(pretty ? { transport: { target: 'pino-pretty', options: { colorize: true, destination: 2 } } } : {}),
  }, pretty ? undefined : pino.destination(2));
}

/** A logger that drops everything; for tests and benchmarks that assert on outcomes, not logs. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
