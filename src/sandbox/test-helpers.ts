import assert from 'node:assert/strict';
import type { RunResult } from './result.js';

/** The value of a run that must have succeeded (fails the test with the error otherwise). */
export function value(r: RunResult): unknown {
  assert.equal(r.ok, true, r.ok ? '' : `${r.error.kind}: ${r.error.message}`);
  return r.ok ? r.value : undefined;
}

/** The error kind of a run that must have failed. */
export function kind(r: RunResult): string {
  assert.equal(r.ok, false, `expected an error, got ${JSON.stringify(r).slice(0, 300)}`);
  return r.ok ? '' : r.error.kind;
}
