import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { checkBudget, isMissed, missedGraceMs } from './guards.js';
import { scheduleOf } from './sync.js';

const budget = (b: { maxTokensPerRun: number; maxTokensPerDay?: number; maxRunsPerDay?: number }) => ({ budget: { maxTokensPerDay: undefined, maxRunsPerDay: undefined, ...b } });

describe('missed runs', () => {
  it('a tick is missed when it starts later than half its period (2 s to 5 min)', () => {
    const every = (s: number) => ({ trigger: { type: 'interval' as const, everySeconds: s }, timezone: undefined });
    assert.equal(missedGraceMs(every(1), 0), 2000);
    assert.equal(missedGraceMs(every(60), 0), 30_000);
    assert.equal(missedGraceMs(every(86_400), 0), 300_000);
    assert.equal(isMissed(every(60), 0, 29_000), false);
    assert.equal(isMissed(every(60), 0, 31_000), true);
    const daily = { trigger: { type: 'cron' as const, cron: '0 9 * * *' }, timezone: 'Europe/Berlin' };
    const nine = Date.parse('2026-11-22T08:00:00Z');
    assert.equal(missedGraceMs(daily, nine), 300_000);
    assert.equal(isMissed(daily, nine, nine + 60_000), false, 'a minute late is on time for a daily job');
    assert.equal(isMissed(daily, nine, nine + 3600_000), true, 'an hour late (hub was down) is a missed run');
  });
});

describe('budgets, checked before the model is called', () => {
  it('a run may use the per-run cap, or what is left of the day if that is less', () => {
    assert.deepEqual(checkBudget(budget({ maxTokensPerRun: 1000 }), { runsToday: 99, tokensToday: 1e9 }, 10), { ok: true, maxTokens: 1000 });
    assert.deepEqual(checkBudget(budget({ maxTokensPerRun: 1000, maxTokensPerDay: 5000 }), { runsToday: 3, tokensToday: 4500 }, 10), { ok: true, maxTokens: 500 });
  });

  it('refuses when the daily tokens or runs are used up, or the prompt cannot fit', () => {
    const tokens = checkBudget(budget({ maxTokensPerRun: 1000, maxTokensPerDay: 5000 }), { runsToday: 3, tokensToday: 5200 }, 10);
    assert.deepEqual(tokens, { ok: false, reason: 'daily token cap reached: 5200 of 5000 tokens used today' });
    const runs = checkBudget(budget({ maxTokensPerRun: 1000, maxRunsPerDay: 3 }), { runsToday: 3, tokensToday: 0 }, 10);
    assert.deepEqual(runs, { ok: false, reason: 'daily run limit reached: 3 of 3 runs today' });
    const prompt = checkBudget(budget({ maxTokensPerRun: 1000, maxTokensPerDay: 5000 }), { runsToday: 0, tokensToday: 4800 }, 300);
    assert.equal(prompt.ok, false);
    assert.match((prompt as { reason: string }).reason, /prompt alone is about 300 tokens, more than the 200/);
  });
});

describe('schedules in Redis', () => {
  it('a routine maps to BullMQ repeat options; the spec hash changes only with the trigger', () => {
    const cron = scheduleOf({ trigger: { type: 'cron', cron: '30 2 * * *' }, timezone: 'Europe/Berlin' })!;
    assert.deepEqual(cron.repeat, { pattern: '30 2 * * *', tz: 'Europe/Berlin' });
    assert.notEqual(cron.spec, scheduleOf({ trigger: { type: 'cron', cron: '30 2 * * *' }, timezone: 'Europe/Paris' })!.spec);
    const a = scheduleOf({ trigger: { type: 'interval', everySeconds: 60 }, timezone: undefined }, 1000)!;
    const b = scheduleOf({ trigger: { type: 'interval', everySeconds: 60 }, timezone: 'UTC' }, 5000)!;
    assert.equal(a.spec, b.spec, 're-syncing an unchanged interval does not move it');
    assert.equal(a.repeat.startDate, 61_000, 'the first run is one interval after it was added');
    assert.deepEqual(scheduleOf({ trigger: { type: 'once', runAt: 123 }, timezone: undefined })!.repeat, { every: 365 * 24 * 3600 * 1000, startDate: 123, limit: 1 });
    assert.equal(scheduleOf({ trigger: { type: 'webhook' }, timezone: undefined }), undefined);
  });
});
