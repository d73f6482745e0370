import type { Limits } from './limits.js';
import type { SandboxError, SandboxErrorKind } from './result.js';

export function timeoutMessage(ms: number): string {
  return `the run exceeded its ${ms} ms deadline`;
}

export function limitMessage(kind: 'memory' | 'stack', limits: Limits): string {
  if (kind === 'memory') return `the guest ran out of memory (limit ${limits.memoryMb} MB)`;
  return `the guest exceeded its stack (limit ${limits.stackKb} KB); recursion too deep`;
}

/**
 * Makes guest stack traces point at the guest's own lines: its code is compiled as the body of an
 * async function (two header lines), and frames from the prelude are noise to the reader.
 */
export function cleanStack(text: string): string {
  return text
    .split('\n')
    .filter((line) => !line.includes('(prelude.js:') && !/^\s+at AsyncFunction \(native\)$/.test(line))
    .map((line) => line.replace(/<input>:(\d+)/g, (_m, n: string) => `<code>:${Math.max(1, Number(n) - 2)}`))
    .join('\n')
    .trimEnd();
}

/**
 * Maps a guest failure (its error description, or null when there was none to read) to a kind.
 * The interpreter's own limits announce themselves as InternalErrors; an allocation failure deep
 * inside it surfaces as a thrown null, or as nothing at all when even describing it failed, so a
 * heap grown close to its cap (`memoryFull`) decides those.
 */
export function classifyFailure(text: string | null, memoryFull: boolean, limits: Limits, fallback: string): SandboxError {
  if (text === null || text === 'Uncaught null') {
    return memoryFull ? { kind: 'memory', message: limitMessage('memory', limits) } : { kind: 'runtime', message: text ?? fallback };
  }
  if (/^InternalError: (out of memory|string too long)/.test(text)) return { kind: 'memory', message: limitMessage('memory', limits) };
  if (/^(InternalError|SyntaxError|RangeError): (stack overflow|Maximum call stack)/.test(text)) return { kind: 'stack', message: limitMessage('stack', limits) };
  if (/^InternalError: interrupted/.test(text)) return { kind: 'timeout', message: timeoutMessage(limits.timeoutMs) };
  return { kind: 'runtime', message: cleanStack(text) };
}

/**
 * Maps an exception that escaped the interpreter into the host (not a guest error): a native stack
 * overflow is the guest recursing past what the thread allows, a wasm trap near a full heap is memory.
 */
export function classifyHostException(err: unknown, memoryFull: boolean, limits: Limits): SandboxError {
  const message = String((err as Error | undefined)?.message ?? err);
  const kind: SandboxErrorKind = err instanceof RangeError ? 'stack' : memoryFull || /memory|OOM/i.test(message) ? 'memory' : 'runtime';
  if (kind === 'runtime') return { kind, message: `the interpreter failed: ${message.slice(0, 500)}` };
  return { kind, message: limitMessage(kind, limits) };
}
