import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';

/** A guest that computes longer than this is moved to the lowest CPU priority. */
export const LOWER_PRIORITY_AFTER_MS = 50;

function threadId(): number | undefined {
  if (process.platform !== 'linux') return undefined;
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    // Never touch the main thread: its id is the process id.
    return Number.isInteger(tid) && tid > 0 && tid !== process.pid ? tid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Drops the calling worker thread to the lowest scheduling priority (nice 19), so a guest that
 * spins until its deadline yields the CPU to the host and to short runs. Linux only (each thread
 * is a task with its own nice value); elsewhere it does nothing and returns false.
 */
export function lowerThreadPriority(): boolean {
  return setThreadPriority(19);
}

/**
 * Puts the calling worker thread back to normal priority. Only a privileged process (root or
 * CAP_SYS_NICE) may do that; otherwise it returns false and the host retires the worker instead.
 */
export function restoreThreadPriority(): boolean {
  return setThreadPriority(0);
}

/** Sets the calling worker thread's nice value; false where that is not possible. */
function setThreadPriority(nice: number): boolean {
  const tid = threadId();
  if (tid === undefined) return false;
  try {
    setPriority(tid, nice);
    return true;
  } catch {
    return false;
  }
}
