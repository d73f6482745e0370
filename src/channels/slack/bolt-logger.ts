import { LogLevel, type Logger as BoltLogger } from '@slack/bolt';
import type { Logger } from '../../logger.js';

/*
 * Bolt and its socket client log every reconnect attempt and failed call at warn/error. The adapter
 * reports those itself, once, through ConnectionState and its own lines, so Bolt's chatter goes to
 * debug (scrubbed: its debug lines can quote request bodies).
 */
export function boltLogger(logger: Logger, scrub: (s: string) => string): BoltLogger {
  let level = LogLevel.DEBUG;
  const write = (...msg: unknown[]) => {
    if (!logger.isLevelEnabled('debug')) return;
    logger.debug({ source: 'bolt' }, scrub(msg.map((m) => (m instanceof Error ? m.message : typeof m === 'string' ? m : safeJson(m))).join(' ')));
  };
  return {
    debug: write, info: write, warn: write, error: write,
    setLevel: (l: LogLevel) => { level = l; },
    getLevel: () => level,
    setName: () => undefined,
  };
}

function safeJson(v: unknown): string {
  try { return JSON.stringify(v); } catch { return String(v); }
}
