import assert from 'node:assert/strict';
import type { LookupAddress } from 'node:dns';
import { describe, it } from 'node:test';
import { checkDestination, EgressDeniedError } from './egress.js';
import { matchHttpGrant, normalizeGrant, parseHttpGrant } from './grant.js';
import { isPublicAddress, pinnedLookup } from './net-policy.js';

describe('isPublicAddress', () => {
  it('accepts public unicast addresses', () => {
    for (const ip of ['8.8.8.8', '1.1.1.1', '140.82.112.3', '2606:4700:4700::1111', '2a00:1450:4001:82a::200e']) {
      assert.equal(isPublicAddress(ip), true, ip);
    }
  });

  it('refuses private, loopback, link-local, CGNAT, multicast, reserved and tunnelled addresses', () => {
    const blocked = [
      '127.0.0.1', '127.255.0.9', '10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.1.1', '169.254.169.254',
      '100.64.0.1', '0.0.0.0', '224.0.0.1', '255.255.255.255', '198.18.0.1', '192.0.2.5',
      '::1', '::', 'fe80::1', 'fc00::1', 'fd12:3456::1', 'ff02::1', '::ffff:127.0.0.1', '::ffff:10.0.0.1',
      '64:ff9b::a00:1', '2002:a00:1::1', '2001::1', '2001:db8::1', 'fe80::1%eth0', 'not-an-ip', '',
    ];
    for (const ip of blocked) assert.equal(isPublicAddress(ip), false, ip);
  });
});

describe('http grant entries', () => {
  it('parses host, host:port and http://host:port, https by default', () => {
    assert.deepEqual(parseHttpGrant('api.github.com'), { scheme: 'https', host: 'api.github.com', port: 443, explicitPort: false });
    assert.deepEqual(parseHttpGrant('API.GitHub.com:8443'), { scheme: 'https', host: 'api.github.com', port: 8443, explicitPort: true });
    assert.deepEqual(parseHttpGrant('http://127.0.0.1:8080'), { scheme: 'http', host: '127.0.0.1', port: 8080, explicitPort: true });
    assert.deepEqual(parseHttpGrant('example.com:443'), { scheme: 'https', host: 'example.com', port: 443, explicitPort: true });
    assert.deepEqual(parseHttpGrant('[::1]:9000'), { scheme: 'https', host: '[::1]', port: 9000, explicitPort: true });
  });

  it('rejects paths, wildcards, credentials and other schemes with a fix', () => {
    for (const bad of ['https://x.com/path', '*.github.com', 'user@x.com', 'ftp://x.com', 'x.com?q', '', 'x.com:99999']) {
      assert.throws(() => parseHttpGrant(bad), /http grant .* is invalid.*use "host"/, bad);
    }
    assert.throws(() => normalizeGrant({ http: ['ok.com', 'bad/path'], tools: [] }), /bad\/path/);
    assert.throws(() => normalizeGrant({ http: [], tools: ['Not A Name'] }), /tools/);
  });

  it('matches scheme, host and port exactly', () => {
    const entries = ['api.github.com', 'http://127.0.0.1:8080'].map(parseHttpGrant);
    assert.ok(matchHttpGrant(entries, new URL('https://api.github.com/repos')));
    assert.ok(matchHttpGrant(entries, new URL('https://API.github.com:443/')));
    assert.ok(matchHttpGrant(entries, new URL('http://127.0.0.1:8080/x')));
    assert.equal(matchHttpGrant(entries, new URL('http://api.github.com/')), undefined);
    assert.equal(matchHttpGrant(entries, new URL('https://api.github.com:444/')), undefined);
    assert.equal(matchHttpGrant(entries, new URL('https://evil.api.github.com/')), undefined);
    assert.equal(matchHttpGrant(entries, new URL('https://127.0.0.1:8080/')), undefined);
  });
});

describe('checkDestination', () => {
  it('says which scheme a grant means, and the exact entry that would allow the refused URL', () => {
    assert.throws(() => checkDestination('http://127.0.0.1:8080/x', ['127.0.0.1:8080']),
      { message: 'http://127.0.0.1:8080 is not in this run\'s http grant (granted: https://127.0.0.1:8080): the grant "127.0.0.1:8080" means https://127.0.0.1:8080; to reach http://127.0.0.1:8080 the grant must be "http://127.0.0.1:8080"' });
    assert.throws(() => checkDestination('https://evil.example/', ['api.github.com', 'http://10.0.0.5:9000']),
      { message: 'https://evil.example is not in this run\'s http grant (granted: https://api.github.com, http://10.0.0.5:9000); to allow it, the grant needs "evil.example"' });
    assert.throws(() => checkDestination('https://a.example/', []), /granted: nothing \(no network\)\); to allow it, the grant needs "a\.example"/);
  });

  it('refuses what the grant does not name, before any connection', () => {
    assert.throws(() => checkDestination('https://evil.com/', ['api.github.com']), EgressDeniedError);
    assert.throws(() => checkDestination('file:///etc/passwd', ['api.github.com']), /scheme/);
    assert.throws(() => checkDestination('https://u:p@api.github.com/', ['api.github.com']), /credentials/);
    assert.throws(() => checkDestination('not a url', ['api.github.com']), /absolute URL/);
  });

  it('refuses private IP literals unless the entry names the port', () => {
    assert.throws(() => checkDestination('https://10.0.0.1/', ['10.0.0.1']), /private/);
    assert.throws(() => checkDestination('https://[::1]/', ['[::1]']), /private/);
    // WHATWG URL normalizes numeric tricks to dotted quads first.
    assert.throws(() => checkDestination('https://0x7f.1/', ['127.0.0.1']), /private/);
    assert.equal(checkDestination('https://10.0.0.1:443/', ['10.0.0.1:443']).entry.explicitPort, true);
  });
});

describe('pinnedLookup', () => {
  function lookup(allowPrivate: boolean, host: string): Promise<LookupAddress[]> {
    return new Promise((resolve, reject) => {
      pinnedLookup(allowPrivate, `${host}:1`)(host, { all: true }, (err, addresses) => {
        if (err) reject(err);
        else resolve(addresses as LookupAddress[]);
      });
    });
  }

  it('refuses a name that resolves to a private address, inside the lookup the socket uses', async () => {
    await assert.rejects(lookup(false, 'localhost'), (err: Error) => err instanceof EgressDeniedError && /resolves to/.test(err.message));
  });

  it('hands the socket exactly the addresses it checked', async () => {
    const addresses = await lookup(true, 'localhost');
    assert.ok(addresses.length > 0);
    for (const a of addresses) assert.equal(isPublicAddress(a.address), false);
  });
});
