/**
 * Polls `fn` until it returns something truthy (an empty array counts as "not yet") and returns it;
 * throws naming `what` after `ms`. End-to-end tests wait for conditions this way instead of sleeping.
 */
export async function waitFor<T>(fn: () => T | undefined | false | Promise<T | undefined | false>, what: string, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v && !(Array.isArray(v) && v.length === 0)) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** `waitFor` with the description first, as the channel tests read: `until('the reply', () => …)`. */
export const until = <T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, ms?: number): Promise<T> => waitFor(fn, what, ms);
