import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cronProblem, nextCronRuns } from './cron.js';
import { formatLocal } from './time.js';

const at = (iso: string) => Date.parse(iso);
const local = (pattern: string, tz: string, fromIso: string, n: number) => nextCronRuns(pattern, tz, at(fromIso), n).map((t) => formatLocal(t, tz));
const utc = (pattern: string, tz: string, fromIso: string, n: number) => nextCronRuns(pattern, tz, at(fromIso), n).map((t) => new Date(t).toISOString());

describe('cron parsing', () => {
  it('requires an explicit IANA time zone, never assuming UTC', () => {
    assert.match(cronProblem('0 9 * * *', undefined)!, /needs a time zone: pass --tz .* never assumes UTC/);
    assert.match(cronProblem('0 9 * * *', 'Mars/Olympus')!, /not an IANA time zone/);
    assert.match(cronProblem('0 9 * * *', '+02:00')!, /not an IANA time zone/);
    assert.equal(cronProblem('0 9 * * *', 'UTC'), undefined, 'UTC is fine when it is said');
  });

  it('takes exactly five fields and says which one is wrong', () => {
    assert.equal(cronProblem('30 8 * * 1-5', 'Europe/Berlin'), undefined);
    assert.equal(cronProblem('*/15 9-17 * jan-mar MON-FRI', 'Europe/Berlin'), undefined);
    assert.match(cronProblem('0 0 9 * * *', 'UTC')!, /has 6 fields; routines use exactly five/);
    assert.match(cronProblem('0 9 * *', 'UTC')!, /has 4 fields/);
    assert.match(cronProblem('@daily', 'UTC')!, /write the five fields instead of a shortcut/);
    assert.match(cronProblem('0 25 * * *', 'UTC')!, /not valid: .*25/);
    assert.match(cronProblem('0 9 * * $', 'UTC')!, /day of week field "\$"/);
    assert.match(cronProblem('0 0 31 2 *', 'UTC')!, /not valid|never fires/);
  });
});

describe('next runs across time zones', () => {
  it('09:00 on weekdays is 09:00 local in each zone, whatever its offset', () => {
    // Friday 2026-11-20 12:00 UTC.
    assert.deepEqual(local('0 9 * * 1-5', 'Asia/Kolkata', '2026-11-20T12:00:00Z', 2), ['2026-11-23 09:00 Asia/Kolkata', '2026-11-24 09:00 Asia/Kolkata']);
    assert.deepEqual(utc('0 9 * * 1-5', 'Asia/Kolkata', '2026-11-20T12:00:00Z', 1), ['2026-11-23T03:30:00.000Z']);
    assert.deepEqual(utc('0 9 * * 1-5', 'America/New_York', '2026-11-20T12:00:00Z', 1), ['2026-11-20T14:00:00.000Z']);
    assert.deepEqual(utc('0 9 * * 1-5', 'Pacific/Auckland', '2026-11-20T12:00:00Z', 1), ['2026-11-22T20:00:00.000Z'], 'Monday morning in Auckland is Sunday evening in UTC');
  });

  it('spring forward: a 02:30 daily job runs once on the short night, at 03:30 local', () => {
    // America/New_York jumps from 02:00 to 03:00 on 2026-03-08.
    assert.deepEqual(local('30 2 * * *', 'America/New_York', '2026-03-06T12:00:00Z', 4), [
      '2026-03-07 02:30 America/New_York', '2026-03-08 03:30 America/New_York', '2026-03-09 02:30 America/New_York', '2026-03-10 02:30 America/New_York',
    ]);
    // Europe/Berlin jumps on 2026-03-29.
    const berlin = utc('30 2 * * *', 'Europe/Berlin', '2026-03-28T12:00:00Z', 2);
    assert.deepEqual(berlin, ['2026-03-29T01:30:00.000Z', '2026-03-30T00:30:00.000Z'], 'one run on the short day, none lost, none doubled');
  });

  it('fall back: a 01:30 daily job runs once, at the first 01:30', () => {
    // America/New_York repeats 01:00-02:00 on 2026-11-01.
    assert.deepEqual(utc('30 1 * * *', 'America/New_York', '2026-10-31T12:00:00Z', 2), ['2026-11-01T05:30:00.000Z', '2026-11-02T06:30:00.000Z']);
    assert.deepEqual(utc('30 2 * * *', 'Europe/Berlin', '2026-10-24T12:00:00Z', 2), ['2026-10-25T00:30:00.000Z', '2026-10-26T01:30:00.000Z']);
  });

  it('fall back: a half-hourly job keeps firing every real half hour through the repeated hour', () => {
    assert.deepEqual(utc('*/30 * * * *', 'America/New_York', '2026-11-01T04:45:00Z', 5), [
      '2026-11-01T05:00:00.000Z', '2026-11-01T05:30:00.000Z', '2026-11-01T06:00:00.000Z', '2026-11-01T06:30:00.000Z', '2026-11-01T07:00:00.000Z',
    ]);
  });
});
