import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../logger.js';
import { startEmbeddedRedis } from './embedded.js';

const alive = (pid: number) => { try { process.kill(pid, 0); return true; } catch { return false; } };

describe('embedded redis: adopting a server left behind', () => {
  it('a server whose pid file is unreadable is left alone: not reported as exited, no second server, stop() returns', async () => {
    const home = mkdtempSync(join(tmpdir(), 'bulwark-adopt-'));
    const first = await startEmbeddedRedis(home, silentLogger());
    const pid = first.pid!;
    try {
      // A hub killed after its server started, and a pid file that no longer says which one it is.
      writeFileSync(join(home, 'redis', 'redis.pid'), 'garbage\n');
      const exits: string[] = [];
      const adopted = await startEmbeddedRedis(home, silentLogger(), { onExit: (why) => exits.push(why) });
      assert.equal(adopted.pid, undefined);
      await new Promise((r) => setTimeout(r, 800));
      assert.deepEqual(exits, [], 'its exit was not reported (a restart would start a second server on the same files)');
      assert.equal(adopted.state(), 'up');
      assert.equal(readFileSync(join(home, 'redis', 'redis.pid'), 'utf8'), 'garbage\n', 'no second server wrote its pid');
      await adopted.stop();
      assert.ok(alive(pid), 'a server it cannot identify is not stopped');
    } finally {
      await first.stop();
      rmSync(home, { recursive: true, force: true });
    }
  });
});
