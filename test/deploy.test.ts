import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { KEY_ENV } from '../src/config/load.js';
import { ENV_KEYS } from '../src/config/schema.js';

// docker-compose.yml and the Dockerfile cannot be run here (no Docker engine); these checks keep
// them honest against the code: every variable they set is one the hub reads.
const root = join(import.meta.dirname, '..');
const known = new Set([...Object.keys(ENV_KEYS), ...KEY_ENV]);
const ours = (name: string) => name.startsWith('BULWARK_') || name === 'REDIS_URL' || name === 'DATABASE_URL';

describe('deployment files', () => {
  it('docker-compose.yml sets only variables the hub knows', () => {
    const text = readFileSync(join(root, 'docker-compose.yml'), 'utf8');
    const hub = text.slice(text.indexOf('\n  hub:'));
    const names = [...hub.matchAll(/^\s{6}([A-Z_]+):/gm)].map((m) => m[1]!).filter(ours);
    assert.ok(names.length >= 6, 'found the hub environment block');
    for (const n of names) assert.ok(known.has(n), `${n} in docker-compose.yml is not a Bulwark setting`);
    assert.match(hub, /127\.0\.0\.1:8787:8787/, 'published on loopback only');
    assert.match(hub, /\/readyz/, 'healthcheck uses readiness');
  });

  it('the Dockerfile sets known variables and ships the migrations', () => {
    const text = readFileSync(join(root, 'Dockerfile'), 'utf8');
    for (const [, n] of text.matchAll(/\b(BULWARK_[A-Z_]+)=/g)) assert.ok(known.has(n!), `${n} in Dockerfile is not a Bulwark setting`);
    assert.match(text, /COPY --from=build \/app\/prisma \.\/prisma/, 'migrations are applied at start, so they must be in the image');
    assert.match(text, /USER node/);
  });
});
