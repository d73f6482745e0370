import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { draftFromOptions, type DraftDefaults } from './draft.js';
import { parseDuration, parseTarget } from './spec.js';

const defaults: DraftDefaults = { timezone: undefined, maxTokensPerRun: 16_000, maxTokensPerDay: 100_000 };
const now = Date.parse('2026-11-22T12:00:00Z');

describe('routine options from the CLI', () => {
  it('builds a cron routine; the time zone comes from --tz or the owner\'s routines.timezone', () => {
    const d = draftFromOptions('standup', { to: 'web:c_abc', cron: '30 8 * * 1-5', tz: 'Europe/Berlin', prompt: 'Plan my day.' }, undefined, defaults, now);
    assert.deepEqual(d.trigger, { type: 'cron', cron: '30 8 * * 1-5' });
    assert.equal(d.timezone, 'Europe/Berlin');
    assert.deepEqual(d.target, { channel: 'web', accountId: 'local', chatId: 'c_abc' });
    assert.equal(d.missedRuns, 'catch_up');
    assert.equal(d.maxTokensPerDay, 100_000);
    const inherited = draftFromOptions('standup', { to: 'web:c_abc', cron: '30 8 * * 1-5', prompt: 'x' }, undefined, { ...defaults, timezone: 'Asia/Tokyo' }, now);
    assert.equal(inherited.timezone, 'Asia/Tokyo', 'stored on the routine, so it is visible and does not drift with the config');
  });

  it('says what is missing or wrong, naming the option', () => {
    const bad = (o: Parameters<typeof draftFromOptions>[1]) => () => draftFromOptions('r', { to: 'web:c_abc', prompt: 'x', ...o }, undefined, defaults, now);
    assert.throws(bad({ cron: '0 9 * * *' }), /trigger\.cron: cron "0 9 \* \* \*" needs a time zone/);
    assert.throws(bad({}), /say when it runs: --cron/);
    assert.throws(bad({ every: '5m', cron: '* * * * *' }), /give one trigger/);
    assert.throws(bad({ every: 'often' }), /not a duration/);
    assert.throws(bad({ at: '2020-01-01T00:00Z' }), /in the past/);
    assert.throws(bad({ every: '5m', maxTokensPerRun: 'lots' }), /--max-tokens-per-run must be a whole number/);
    assert.throws(bad({ every: '5m', missed: 'sometimes' as 'skip' }), /--missed must be skip or catch-up/);
    assert.throws(bad({ every: '5m', activeHours: '9-17' }), /HH:MM-HH:MM/);
    assert.throws(bad({ every: '5m', activeHours: '09:00-17:00' }), /active hours need a time zone/);
    assert.throws(() => draftFromOptions('heartbeat', { to: 'web:c_abc', every: '5m', prompt: 'x' }, undefined, defaults, now), /built-in heartbeat/);
  });

  it('edit changes only what is given', () => {
    const base = draftFromOptions('r', { to: 'telegram:bot1:42', every: '15m', prompt: 'x', tz: 'UTC', maxRunsPerDay: '10' }, undefined, defaults, now);
    const edited = draftFromOptions('r', { disable: true, missed: 'skip' }, base, defaults, now);
    assert.deepEqual({ ...edited, enabled: true, missedRuns: 'catch_up' }, base);
    assert.equal(edited.enabled, false);
    assert.equal(edited.missedRuns, 'skip');
    const once = draftFromOptions('r', { at: '2026-12-01 09:00' }, base, defaults, now);
    assert.deepEqual(once.trigger, { type: 'once', runAt: Date.parse('2026-12-01T09:00:00Z') });
    const fired = { ...once, enabled: false };
    assert.throws(() => draftFromOptions('r', { enable: true }, fired, defaults, Date.parse('2026-12-02T00:00:00Z')), /time has passed: give a new --at/);
  });

  it('parses targets and durations', () => {
    assert.deepEqual(parseTarget('telegram:bot1:-100123'), { channel: 'telegram', accountId: 'bot1', chatId: '-100123' });
    assert.deepEqual(parseTarget('slack:T1:C1:1700000000.1'), { channel: 'slack', accountId: 'T1', chatId: 'C1:1700000000.1' });
    assert.throws(() => parseTarget('c_abc'), /CHANNEL:CHAT/);
    assert.deepEqual(['30', '30s', '15m', '2h', '1d'].map(parseDuration), [30, 30, 900, 7200, 86_400]);
  });
});
