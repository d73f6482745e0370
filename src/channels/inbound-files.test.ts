import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { onAllowedHost } from './inbound-files.js';

describe('onAllowedHost: where a file URL from a platform event may be fetched (with a token, for Slack)', () => {
  const hosts = ['files.slack.com'];
  it('accepts the platform host over https, and the configured stand-in origin', () => {
    assert.equal(onAllowedHost('https://files.slack.com/files-pri/T1-F1/download/a.png', hosts), true);
    assert.equal(onAllowedHost('http://127.0.0.1:4000/files-pri/x', hosts, 'http://127.0.0.1:4000/api/'), true);
  });
  it('refuses look-alikes, plain http, credentials in the URL, other ports and garbage', () => {
    for (const url of [
      'https://files.slack.com.evil.example/a.png',
      'https://evil.example/files.slack.com/a.png',
      'https://evil.example#https://files.slack.com/',
      'http://files.slack.com/a.png',
      'https://user:pw@files.slack.com/a.png',
      'https://files.slack.com@evil.example/a.png',
      'http://127.0.0.1:4001/files-pri/x',
      'http://localhost:4000/files-pri/x',
      'file:///etc/passwd',
      'not a url',
    ]) assert.equal(onAllowedHost(url, hosts, 'http://127.0.0.1:4000/api/'), false, url);
    assert.equal(onAllowedHost('http://127.0.0.1:4000/x', hosts), false, 'no stand-in origin unless configured');
  });
});
