import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseIp } from '../util/ipAddress.js';
import { FetchPolicy, OriginRefused } from './fetchPolicy.js';

const address = (text: string) => parseIp(text) as Uint8Array;

describe('FetchPolicy', () => {
  it('refuses internal addresses by default, naming the class and the flag that opens them', () => {
    const policy = new FetchPolicy();
    assert.throws(
      () => policy.checkAddress('localhost', address('127.0.0.1')),
      (error: unknown) =>
        error instanceof OriginRefused &&
        error.addressClass === 'loopback' &&
        /localhost resolves to 127\.0\.0\.1, which is a loopback address/.test(error.message) &&
        /--fetch-allow/.test(error.message),
    );
    assert.throws(() => policy.checkHost('10.0.0.1'), /10\.0\.0\.1 is a private address/);
    assert.throws(() => policy.checkHost('[::ffff:127.0.0.1]'), /loopback/);
    assert.throws(() => policy.checkHost('0.0.0.0'), /is an unspecified address/);
    assert.throws(() => policy.checkHost('Metadata.Google.Internal.'), /cloud metadata/);
    policy.checkAddress('example.com', address('93.184.215.14'));
    assert.equal(policy.checkHost('example.com'), false, 'a name still needs its addresses checked');
  });

  it('opens exact names, subdomains of *.domain, addresses and prefixes', () => {
    const policy = new FetchPolicy(['Artifacts.Internal', '*.corp.example', '127.0.0.1', '10.0.0.0/8', '[fd00::]/8']);
    assert.ok(policy.allowsName('artifacts.internal.'));
    assert.ok(policy.allowsName('a.b.corp.example'));
    assert.ok(!policy.allowsName('corp.example'), '*.domain does not name the domain itself');
    assert.ok(!policy.allowsName('evilcorp.example'));
    assert.equal(policy.checkHost('artifacts.internal'), true);
    policy.checkAddress('anything', address('127.0.0.1'));
    policy.checkAddress('anything', address('::ffff:127.0.0.1'));
    policy.checkAddress('anything', address('10.9.8.7'));
    policy.checkAddress('anything', address('fd12::1'));
    assert.throws(() => policy.checkAddress('anything', address('127.0.0.2')), OriginRefused);
    assert.throws(() => policy.checkAddress('anything', address('::1')), OriginRefused);
  });

  it('rejects malformed patterns', () => {
    for (const pattern of ['', 'http://host', 'host:80', '*', '*.', 'a..b', '10.0.0.0/40', 'exa mple']) {
      assert.throws(() => new FetchPolicy([pattern]), /is not a host name/, pattern);
    }
  });
});
