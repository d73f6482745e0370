import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from './load.js';

function withDir(fn: (dir: string) => void) {
  const dir = mkdtempSync(join(tmpdir(), 'bulwark-cfg-'));
  try { fn(dir); } finally { rmSync(dir, { recursive: true, force: true }); }
}

function problems(fn: () => unknown): string[] {
  try { fn(); } catch (err) { assert.ok(err instanceof ConfigError, String(err)); return err.problems; }
  assert.fail('expected a ConfigError');
}

describe('loadConfig', () => {
  it('has safe defaults: loopback, port 8787, data in ./.bulwark, no model', () => withDir((dir) => {
    const { config, home, file } = loadConfig({}, dir);
    assert.equal(config.server.host, '127.0.0.1');
    assert.equal(config.server.port, 8787);
    assert.equal(home, join(dir, '.bulwark'));
    assert.equal(config.llm.provider, undefined);
    assert.equal(file, undefined);
  }));

  it('reads bulwark.toml and lets environment variables override it', () => withDir((dir) => {
    writeFileSync(join(dir, 'bulwark.toml'), '[server]\nport = 9000\nhost = "127.0.0.2"\n[llm]\nprovider = "openai-compatible"\nmodel = "llama3.2"\nbase_url = "http://127.0.0.1:11434/v1"\n');
    const { config, file } = loadConfig({ BULWARK_PORT: '9100' }, dir);
    assert.equal(file, join(dir, 'bulwark.toml'));
    assert.equal(config.server.port, 9100);
    assert.equal(config.server.host, '127.0.0.2');
    assert.equal(config.llm.model, 'llama3.2');
  }));

  it('stops on an unknown key, naming it and the file', () => withDir((dir) => {
    writeFileSync(join(dir, 'bulwark.toml'), '[server]\nprot = 9000\n');
    const [p] = problems(() => loadConfig({}, dir));
    assert.match(p!, /unknown key "server\.prot"/);
    assert.match(p!, /bulwark\.toml/);
  }));

  it('stops on a bad value, naming the key and where it came from', () => withDir((dir) => {
    const [p] = problems(() => loadConfig({ BULWARK_PORT: 'eighty' }, dir));
    assert.match(p!, /^server\.port \(environment variable BULWARK_PORT\)/);
    const [q] = problems(() => loadConfig({ BULWARK_LLM_PROVIDER: 'gpt' }, dir));
    assert.match(q!, /llm\.provider/);
    assert.match(q!, /openai-compatible/);
  }));

  it('flags a misspelt BULWARK_ variable with a suggestion', () => withDir((dir) => {
    const [p] = problems(() => loadConfig({ BULWARK_LLM_MODLE: 'x' }, dir));
    assert.match(p!, /unknown environment variable BULWARK_LLM_MODLE: did you mean BULWARK_LLM_MODEL\?/);
  }));

  it('accepts the master key variables (read by the vault, never put into the config object)', () => withDir((dir) => {
    const loaded = loadConfig({ BULWARK_MASTER_KEY: 'a'.repeat(44), BULWARK_NEW_MASTER_KEY: 'b'.repeat(44) }, dir);
    assert.ok(!JSON.stringify(loaded.config).includes('a'.repeat(44)));
    const [p] = problems(() => loadConfig({ BULWARK_MASTER_KY: 'x' }, dir));
    assert.match(p!, /did you mean BULWARK_MASTER_KEY\?/);
  }));

  it('requires what each provider needs', () => withDir((dir) => {
    assert.match(problems(() => loadConfig({ BULWARK_LLM_PROVIDER: 'openai-compatible', BULWARK_LLM_MODEL: 'm' }, dir))[0]!, /BULWARK_LLM_BASE_URL/);
    assert.match(problems(() => loadConfig({ BULWARK_LLM_PROVIDER: 'anthropic', BULWARK_LLM_MODEL: 'm' }, dir))[0]!, /BULWARK_LLM_API_KEY/);
    assert.match(problems(() => loadConfig({ BULWARK_LLM_PROVIDER: 'openai' }, dir)).join('\n'), /BULWARK_LLM_MODEL/);
  }));

  it('reports invalid TOML and never echoes the API key', () => withDir((dir) => {
    writeFileSync(join(dir, 'bulwark.toml'), '[llm\napi_key = "sk-secret-value"\n');
    const all = problems(() => loadConfig({}, dir)).join('\n');
    assert.match(all, /not valid TOML/);
    assert.doesNotMatch(all, /sk-secret-value/);
  }));

  it('refuses a config file holding an API key that other users can read', () => withDir((dir) => {
    const f = join(dir, 'bulwark.toml');
    writeFileSync(f, '[llm]\nprovider = "openai"\nmodel = "gpt-4o-mini"\napi_key = "sk-secret-value"\n');
    chmodSync(f, 0o644);
    const [p] = problems(() => loadConfig({}, dir));
    assert.match(p!, /chmod 600/);
    chmodSync(f, 0o600);
    assert.equal(loadConfig({}, dir).config.llm.api_key, 'sk-secret-value');
  }));
});

describe('loadConfig number errors', () => {
  it('says what a number setting accepts', () => withDir((dir) => {
    assert.match(problems(() => loadConfig({ BULWARK_PORT: 'abc' }, dir))[0]!, /server\.port \(environment variable BULWARK_PORT\): must be a whole number from 0 to 65535/);
    assert.match(problems(() => loadConfig({ BULWARK_WORKER_CONCURRENCY: '0' }, dir))[0]!, /worker\.concurrency .*must be at least 1/);
  }));
});

describe('loadConfig routines and heartbeat', () => {
  it('has no owner time zone by default and the heartbeat off', () => withDir((dir) => {
    const { config } = loadConfig({}, dir);
    assert.equal(config.routines.timezone, undefined);
    assert.equal(config.heartbeat.enabled, false);
    assert.equal(config.heartbeat.every_minutes, 30);
    assert.equal(config.heartbeat.active_hours, '08:00-22:00');
  }));

  it('checks time zones and active hours', () => withDir((dir) => {
    assert.equal(loadConfig({ BULWARK_TIMEZONE: 'America/New_York' }, dir).config.routines.timezone, 'America/New_York');
    assert.equal(loadConfig({ BULWARK_TIMEZONE: 'europe/berlin' }, dir).config.routines.timezone, 'Europe/Berlin', 'canonical spelling');
    assert.match(problems(() => loadConfig({ BULWARK_TIMEZONE: 'CEST' }, dir))[0]!, /routines\.timezone \(environment variable BULWARK_TIMEZONE\): must be an IANA time zone/);
    assert.match(problems(() => loadConfig({ BULWARK_HEARTBEAT_ACTIVE_HOURS: '8-22' }, dir))[0]!, /heartbeat\.active_hours .*HH:MM-HH:MM/);
  }));

  it('an enabled heartbeat needs somewhere to speak and a clock for its active hours', () => withDir((dir) => {
    const all = problems(() => loadConfig({ BULWARK_HEARTBEAT_ENABLED: 'true' }, dir)).join('\n');
    assert.match(all, /heartbeat\.to .*required when heartbeat\.enabled is true/);
    assert.match(all, /routines\.timezone .*BULWARK_TIMEZONE/);
    const ok = loadConfig({ BULWARK_HEARTBEAT_ENABLED: '1', BULWARK_HEARTBEAT_TO: 'web:c_abc', BULWARK_HEARTBEAT_ACTIVE_HOURS: 'always' }, dir);
    assert.equal(ok.config.heartbeat.enabled, true);
  }));
});
