/*
 * The local web chat: one static page and one script, no build step and no third-party code, so
 * the Content-Security-Policy can forbid everything but our own origin.
 */

export function PAGE_HTML(loggedIn: boolean): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Bulwark</title>
<style>
  body { font: 15px/1.45 system-ui, sans-serif; margin: 0; background: #f5f5f4; color: #1c1917; display: flex; flex-direction: column; height: 100vh; }
  header { padding: 10px 16px; background: #1c1917; color: #fafaf9; display: flex; justify-content: space-between; align-items: center; }
  header button { background: none; border: 1px solid #78716c; color: #fafaf9; border-radius: 4px; padding: 2px 10px; cursor: pointer; }
  #log { flex: 1; overflow-y: auto; padding: 16px; }
  .msg { max-width: 760px; margin: 0 auto 10px; padding: 8px 12px; border-radius: 8px; white-space: pre-wrap; word-wrap: break-word; }
  .user { background: #dbeafe; margin-right: 0; } .assistant { background: #fff; border: 1px solid #e7e5e4; }
  .pending { color: #78716c; font-style: italic; }
  form { display: flex; gap: 8px; padding: 12px 16px; background: #fff; border-top: 1px solid #e7e5e4; }
  textarea { flex: 1; resize: none; font: inherit; padding: 8px; border-radius: 6px; border: 1px solid #d6d3d1; }
  form button { padding: 0 18px; border-radius: 6px; border: 0; background: #1c1917; color: #fff; cursor: pointer; }
  .notice { max-width: 640px; margin: 15vh auto; padding: 24px; background: #fff; border-radius: 8px; border: 1px solid #e7e5e4; }
</style></head><body>
<header><strong>Bulwark</strong>${loggedIn ? '<span><button id="new" type="button">New chat</button> <button id="logout" type="button">Log out</button></span>' : ''}</header>
${loggedIn
    ? '<main id="log" aria-live="polite"></main><form id="send"><textarea id="text" rows="2" placeholder="Message Bulwark (Enter to send, Shift+Enter for a new line)" required></textarea><button>Send</button></form><script src="/app.js"></script>'
    : '<div class="notice"><h2>Log in</h2><p>Open the one-time login link that <code>bulwark start</code> printed, or run <code>bulwark login</code> for a new one.</p></div>'}
</body></html>`;
}

export const APP_JS = `'use strict';
const log = document.getElementById('log');
const form = document.getElementById('send');
const text = document.getElementById('text');
let conversationId = sessionStorage.getItem('bulwark.conversation');
let source;
const pending = new Map();

function add(role, body, cls) {
  const div = document.createElement('div');
  div.className = 'msg ' + role + (cls ? ' ' + cls : '');
  div.textContent = body; // never innerHTML: replies are untrusted text
  log.appendChild(div);
  log.scrollTop = log.scrollHeight;
  return div;
}

// Files the agent sent: a download link each (the server sends them as attachments, never rendered).
function addFiles(div, files) {
  for (const f of files || []) {
    const a = document.createElement('a');
    a.href = f.url;
    a.download = f.name;
    a.className = 'file';
    a.textContent = '\u{1F4CE} ' + f.name + ' (' + Math.max(1, Math.round(f.bytes / 1024)) + ' KB)';
    div.appendChild(document.createElement('br'));
    div.appendChild(a);
  }
}

function onReply(ev) {
  const m = JSON.parse(ev.data);
  const wait = m.replyTo && pending.get(m.replyTo);
  if (wait) { wait.remove(); pending.delete(m.replyTo); }
  addFiles(add('assistant', m.text), m.files);
}

// Replies arrive as server-sent events; after=SEQ asks for the ones stored after what we have shown.
function follow(after) {
  if (source) source.close();
  source = new EventSource('/api/conversations/' + conversationId + '/events?after=' + after);
  source.addEventListener('message', onReply);
}

async function load() {
  if (!conversationId) return;
  const r = await fetch('/api/conversations/' + conversationId + '/messages?after=0&limit=500');
  if (!r.ok) { conversationId = null; sessionStorage.removeItem('bulwark.conversation'); return; }
  let last = 0;
  for (const m of (await r.json()).messages) { addFiles(add(m.role, m.text), m.files); last = m.seq; }
  follow(last);
}

form.addEventListener('submit', async (e) => {
  e.preventDefault();
  const body = text.value.trim();
  if (!body) return;
  text.value = '';
  add('user', body);
  const r = await fetch('/api/messages', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ conversationId: conversationId || undefined, text: body }) });
  const res = await r.json();
  if (!r.ok) { add('assistant', 'Error: ' + res.error, 'pending'); return; }
  pending.set(res.messageId, add('assistant', 'working…', 'pending'));
  if (res.conversationId !== conversationId) {
    conversationId = res.conversationId;
    sessionStorage.setItem('bulwark.conversation', conversationId);
    follow(0);
  }
});
text.addEventListener('keydown', (e) => { if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); form.requestSubmit(); } });
document.getElementById('new').addEventListener('click', () => { sessionStorage.removeItem('bulwark.conversation'); location.reload(); });
document.getElementById('logout').addEventListener('click', async () => { await fetch('/api/logout', { method: 'POST' }); location.reload(); });
load();
`;
