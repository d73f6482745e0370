import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { formatLocal, parseActiveHours, parseRunAt, startOfLocalDay, withinActiveHours, zonedTimeToMs } from './time.js';

const iso = (ms: number) => new Date(ms).toISOString();

describe('wall-clock time in a zone', () => {
  it('turns a local time into the instant it names, on normal and DST days', () => {
    assert.equal(iso(zonedTimeToMs({ year: 2026, month: 12, day: 1, hour: 9, minute: 0 }, 'Europe/Berlin')), '2026-12-01T08:00:00.000Z');
    assert.equal(iso(zonedTimeToMs({ year: 2026, month: 7, day: 1, hour: 9, minute: 0 }, 'Europe/Berlin')), '2026-07-01T07:00:00.000Z');
    // Skipped by spring-forward: moves on by the gap, like the clocks (and cron) do.
    assert.equal(formatLocal(zonedTimeToMs({ year: 2026, month: 3, day: 8, hour: 2, minute: 30 }, 'America/New_York'), 'America/New_York'), '2026-03-08 03:30 America/New_York');
    // Repeated by fall-back: the first of the two.
    assert.equal(iso(zonedTimeToMs({ year: 2026, month: 11, day: 1, hour: 1, minute: 30 }, 'America/New_York')), '2026-11-01T05:30:00.000Z');
  });

  it('a day starts at local midnight, and DST days are 23 or 25 hours long', () => {
    const noon = Date.parse('2026-03-29T10:00:00Z');
    const start = startOfLocalDay(noon, 'Europe/Berlin');
    assert.equal(iso(start), '2026-03-28T23:00:00.000Z');
    assert.equal(startOfLocalDay(Date.parse('2026-03-30T10:00:00Z'), 'Europe/Berlin') - start, 23 * 3600_000);
    assert.equal(startOfLocalDay(Date.parse('2026-10-26T10:00:00Z'), 'Europe/Berlin') - startOfLocalDay(Date.parse('2026-10-25T10:00:00Z'), 'Europe/Berlin'), 25 * 3600_000);
  });

  it('parses one-shot times: with an offset anywhere, without one only with a zone', () => {
    assert.equal(iso(parseRunAt('2026-12-01T09:00+01:00', undefined)), '2026-12-01T08:00:00.000Z');
    assert.equal(iso(parseRunAt('2026-12-01T09:00:00Z', 'Asia/Tokyo')), '2026-12-01T09:00:00.000Z');
    assert.equal(iso(parseRunAt('2026-12-01 09:00', 'Asia/Tokyo')), '2026-12-01T00:00:00.000Z');
    assert.throws(() => parseRunAt('2026-12-01 09:00', undefined), /needs a time zone: pass --tz/);
    assert.throws(() => parseRunAt('tomorrow', 'UTC'), /not a date and time/);
    assert.throws(() => parseRunAt('2026-13-01 09:00', 'UTC'), /not a valid date/);
  });
});

describe('active hours', () => {
  const berlin = (local: string) => zonedTimeToMs({ year: 2026, month: 11, day: 22, hour: Number(local.slice(0, 2)), minute: Number(local.slice(3)) }, 'Europe/Berlin');

  it('checks the local clock against a range', () => {
    assert.equal(withinActiveHours(berlin('08:00'), '08:00-22:00', 'Europe/Berlin'), true);
    assert.equal(withinActiveHours(berlin('21:59'), '08:00-22:00', 'Europe/Berlin'), true);
    assert.equal(withinActiveHours(berlin('22:00'), '08:00-22:00', 'Europe/Berlin'), false);
    assert.equal(withinActiveHours(berlin('07:30'), '08:00-22:00', 'Europe/Berlin'), false);
    assert.equal(withinActiveHours(berlin('23:00'), '08:00-22:00', 'America/New_York'), true, '23:00 in Berlin is 17:00 in New York');
  });

  it('wraps midnight, and "always" means always', () => {
    assert.equal(withinActiveHours(berlin('23:30'), '22:00-06:00', 'Europe/Berlin'), true);
    assert.equal(withinActiveHours(berlin('05:59'), '22:00-06:00', 'Europe/Berlin'), true);
    assert.equal(withinActiveHours(berlin('12:00'), '22:00-06:00', 'Europe/Berlin'), false);
    assert.equal(withinActiveHours(berlin('03:00'), 'always', 'Europe/Berlin'), true);
    assert.equal(withinActiveHours(berlin('23:59'), '00:00-24:00', 'Europe/Berlin'), true);
  });

  it('refuses what is not a range', () => {
    assert.throws(() => parseActiveHours('8-22'), /must look like 08:00-22:00/);
    assert.throws(() => parseActiveHours('25:00-26:00'), /not a time range/);
  });
});
