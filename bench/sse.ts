// One SSE reader for the benchmarks that follow replies over /api/conversations/:id/events.

/** Reads one SSE stream and resolves waiters by replyTo. */
export function follow(url: string, token: string, onEvent: (e: { replyTo: string }) => void): AbortController {
  const ac = new AbortController();
  void (async () => {
    const res = await fetch(url, { headers: { authorization: `Bearer ${token}` }, signal: ac.signal }).catch(() => undefined);
    if (!res?.body) return;
    const reader = res.body.getReader();
    const dec = new TextDecoder();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
      if (done) return;
      buf += dec.decode(value, { stream: true });
      let i;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const data = buf.slice(0, i).split('\n').find((l) => l.startsWith('data: '));
        buf = buf.slice(i + 2);
        if (data) onEvent(JSON.parse(data.slice(6)));
      }
    }
  })();
  return ac;
}
