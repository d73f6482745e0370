import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DEFAULT_LIMITS } from './limits.js';
import { grantFromManifest, loadAgentManifest, ManifestError } from './manifest.js';

describe('agent manifests', () => {
  it('reads capabilities and limits', () => {
    const m = grantFromManifest(`
[capabilities]
http = ["api.github.com", "http://127.0.0.1:8080"]
tools = ["memory.search"]

[limits]
memory_mb = 64
timeout_ms = 5000
host_calls = 10
`);
    assert.deepEqual(m.grant, { http: ['api.github.com', 'http://127.0.0.1:8080'], tools: ['memory.search'] });
    assert.deepEqual(m.limits, { ...DEFAULT_LIMITS, memoryMb: 64, timeoutMs: 5000, hostCalls: 10 });
  });

  it('defaults to no network and default limits', () => {
    assert.deepEqual(grantFromManifest(''), { grant: { http: [], tools: [] }, limits: DEFAULT_LIMITS });
  });

  it('rejects unknown keys, naming the key and the known ones', () => {
    assert.throws(() => grantFromManifest('[limits]\nmemory = 32'), (err: Error) =>
      err instanceof ManifestError && /"memory" in \[limits\] is not a known key/.test(err.message) && /memory_mb/.test(err.message));
    assert.throws(() => grantFromManifest('[capabilities]\nnetwork = ["x.com"]'), /"network" in \[capabilities\].*known keys: http, tools/s);
    assert.throws(() => grantFromManifest('[secrets]\nx = 1'), /"secrets" in the top level/);
  });

  it('explains bad values and how to fix them', () => {
    assert.throws(() => grantFromManifest('[limits]\nmemory_mb = 4096'), /\[limits\]\.memory_mb must be an integer from 16 to 1024/);
    assert.throws(() => grantFromManifest('[limits]\ntimeout_ms = "2s"'), /\[limits\]\.timeout_ms must be a number/);
    assert.throws(() => grantFromManifest('[capabilities]\nhttp = "api.github.com"'), /\[capabilities\]\.http must be a list of strings/);
    assert.throws(() => grantFromManifest('[capabilities]\nhttp = ["https://api.github.com/repos"]'), /\[capabilities\]\.http\[0\].*no path/);
    assert.throws(() => grantFromManifest('[limits\nmemory_mb = 1'), /not valid TOML \(line 1/);
  });

  it('loads a file, and treats a missing file as the defaults', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'bulwark-manifest-'));
    try {
      const path = join(dir, 'agent.toml');
      assert.deepEqual((await loadAgentManifest(path)).grant, { http: [], tools: [] });
      await writeFile(path, '[capabilities]\nhttp = ["api.github.com"]\n');
      assert.deepEqual((await loadAgentManifest(path)).grant.http, ['api.github.com']);
      await writeFile(path, '[limits]\nstack_kb = 1\n');
      await assert.rejects(loadAgentManifest(path), new RegExp(`agent manifest ${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: \\[limits\\]\\.stack_kb`));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
