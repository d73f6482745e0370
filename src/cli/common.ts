import { ConfigError, loadConfig, type LoadedConfig } from '../config/load.js';
import { UserError } from '../errors.js';
import { loadApiToken } from '../gateway/auth.js';

/** Prints an error the way a user can act on it (no stack unless DEBUG is set) and exits. */
export function fail(err: unknown): never {
  if (err instanceof ConfigError) {
    process.stderr.write(`bulwark: ${err.message}\n`);
    process.exit(2);
  }
  if (err instanceof UserError) {
    process.stderr.write(`bulwark: ${err.message}\n${err.fix ? `  fix: ${err.fix}\n` : ''}`);
    process.exit(1);
  }
  const e = err as Error;
  process.stderr.write(`bulwark: ${e?.message ?? String(err)}\n`);
  if (process.env.DEBUG) process.stderr.write(`${e?.stack}\n`);
  process.exit(1);
}

export function config(): LoadedConfig {
  try {
    return loadConfig();
  } catch (err) {
    return fail(err);
  }
}

/** The running hub's base URL and the API token, for commands that talk to it over HTTP. */
export function hubClient(loaded: LoadedConfig): { base: string; token: string } {
  const host = loaded.config.server.host === '0.0.0.0' ? '127.0.0.1' : loaded.config.server.host === '::' ? '[::1]' : loaded.config.server.host;
  return { base: `http://${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${loaded.config.server.port}`, token: loadApiToken(loaded.home, false) };
}

/** fetch against the hub with the token; a hub that is not running becomes a clear UserError. */
export async function hubFetch(loaded: LoadedConfig, path: string, init: RequestInit = {}): Promise<Response> {
  const { base, token } = hubClient(loaded);
  try {
    return await fetch(base + path, { ...init, headers: { authorization: `Bearer ${token}`, ...(init.body ? { 'content-type': 'application/json' } : {}), ...(init.headers as Record<string, string> | undefined) } });
  } catch (err) {
    throw new UserError(`the hub is not reachable at ${base} (${(err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message}).`, 'start it with `bulwark start` (or `npm run up`), or set BULWARK_PORT/BULWARK_HOST to where it runs');
  }
}
