import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { triggerOptions } from './approved.js';

describe('triggers the agent writes in a create_routine request', () => {
  it('reads cron (with or without a zone), every and at', () => {
    assert.deepEqual(triggerOptions('cron 30 8 * * 1-5 Europe/Berlin'), { cron: '30 8 * * 1-5', tz: 'Europe/Berlin' });
    assert.deepEqual(triggerOptions('cron 0 9 * * *'), { cron: '0 9 * * *' });
    assert.deepEqual(triggerOptions('  every   30m '), { every: '30m' });
    assert.deepEqual(triggerOptions('at 2026-12-01 09:00 America/New_York'), { at: '2026-12-01 09:00', tz: 'America/New_York' });
    assert.deepEqual(triggerOptions('at 2026-12-01 09:00'), { at: '2026-12-01 09:00' });
  });

  it('refuses anything else, saying what it understands', () => {
    for (const t of ['whenever', 'cron 0 9 * *', 'every', 'daily at 9']) assert.throws(() => triggerOptions(t), /is not understood: write "cron/);
  });
});
