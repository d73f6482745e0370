import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { LeakDetector } from '../vault/leak.js';
import { AuditLog } from './log.js';
import { redactKnownSecrets, safeAuditData } from './safe-data.js';
import { tempDb } from './test-support.js';

// Planted values: a vault secret (known to the guard), a credential in a well-known format, a body.
const VAULT_SECRET = 'planted-vault-value-7f3a9c2e1b';
const GITHUB_TOKEN = `ghp_${'A1b2C3d4E5'.repeat(4)}`;
const BODY = 'Dear Bob, the launch code is hidden under the mat';

describe('safeAuditData', () => {
  it('drops content-named fields, keeps measures of them, and lists what it removed', () => {
    const out = safeAuditData({ messageId: 'm1', body: BODY, text: BODY, bodyBytes: 48, tokensIn: 12, secretValue: 'x', headers: { authorization: 'Bearer abc', host: 'api.github.com' } });
    assert.deepEqual(out, { messageId: 'm1', bodyBytes: 48, tokensIn: 12, headers: { host: 'api.github.com' }, _stripped: ['body', 'text', 'secretValue', 'headers.authorization'] });
  });

  it('redacts credential formats and known secrets in any string, and cuts long strings', async () => {
    const detector = new LeakDetector([{ name: 'planted', value: VAULT_SECRET }]);
    const out = await redactKnownSecrets(safeAuditData({ url: `https://x.test/?k=${GITHUB_TOKEN}`, note: `see ${VAULT_SECRET}`, long: 'a'.repeat(2000) }), (s) => detector.redact(s).findings.length > 0);
    assert.equal(out.url, '[redacted:github-token]');
    assert.equal(out.note, '[redacted:secret]');
    assert.ok(typeof out.long === 'string' && out.long.length < 600);
  });
});

describe('audit entries never hold secret values or message bodies', () => {
  it('a scan of every stored row finds none of the planted values', async () => {
    const t = tempDb();
    const db = await t.open();
    try {
      const detector = new LeakDetector([{ name: 'planted', value: VAULT_SECRET }]);
      const log = new AuditLog(db, { holdsSecret: (s) => detector.redact(s).findings.length > 0 });
      // Callers that make every mistake at once.
      await log.append({ kind: 'message.accepted', actor: 'telegram:1', subject: 'c_1', data: { messageId: 'm1', text: BODY, bytes: BODY.length } });
      await log.append({ kind: 'egress.request', actor: 'agent:default', subject: `api.github.com?token=${GITHUB_TOKEN}`, data: { host: 'api.github.com', status: 200, header: `token ${GITHUB_TOKEN}`, nested: { deeper: [VAULT_SECRET] } } });
      await log.append({ kind: 'leak.detected', actor: `x ${VAULT_SECRET}`, data: { pattern: 'github-token', value: GITHUB_TOKEN, secret: VAULT_SECRET } });
      await log.close();
      const raw = t.raw();
      try {
        const dump = JSON.stringify(raw.prepare('SELECT * FROM AuditEntry').all());
        for (const [name, planted] of [['vault secret', VAULT_SECRET], ['github token', GITHUB_TOKEN], ['message body', BODY]] as const) {
          assert.equal(dump.includes(planted), false, `the ${name} reached the audit table`);
        }
        assert.match(dump, /api\.github\.com/, 'hosts are kept');
      } finally { raw.close(); }
    } finally {
      await db.$disconnect();
      t.cleanup();
    }
  });
});
