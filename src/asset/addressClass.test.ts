import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseIp } from '../util/ipAddress.js';
import { classifyAddress, isMetadataHostName } from './addressClass.js';

const classOf = (text: string) => {
  const bytes = parseIp(text);
  assert.ok(bytes, text);
  return classifyAddress(bytes);
};

describe('address classes the downloader refuses', () => {
  it('names every internal IPv4 range', () => {
    const expected: Array<[string, string]> = [
      ['127.0.0.1', 'loopback'],
      ['127.255.255.254', 'loopback'],
      ['10.1.2.3', 'private'],
      ['172.16.0.1', 'private'],
      ['172.31.255.255', 'private'],
      ['192.168.1.1', 'private'],
      ['169.254.1.1', 'link-local'],
      ['169.254.169.254', 'cloud metadata'],
      ['100.64.0.1', 'shared (CGNAT)'],
      ['100.127.255.255', 'shared (CGNAT)'],
      ['100.100.100.200', 'cloud metadata'],
      ['0.0.0.0', 'unspecified'],
      ['224.0.0.1', 'multicast'],
      ['239.255.255.250', 'multicast'],
      ['255.255.255.255', 'broadcast'],
      ['240.0.0.1', 'reserved'],
      ['192.0.2.1', 'reserved'],
      ['198.18.0.1', 'reserved'],
    ];
    for (const [address, kind] of expected) assert.equal(classOf(address), kind, address);
  });

  it('names every internal IPv6 range, and IPv6 forms of internal IPv4 addresses', () => {
    const expected: Array<[string, string]> = [
      ['::1', 'loopback'],
      ['::', 'unspecified'],
      ['fe80::1', 'link-local'],
      ['fc00::1', 'unique-local'],
      ['fd12:3456::1', 'unique-local'],
      ['fd00:ec2::254', 'cloud metadata'],
      ['ff02::1', 'multicast'],
      ['fec0::1', 'private'],
      ['2001:db8::1', 'reserved'],
      ['::ffff:127.0.0.1', 'loopback'],
      ['::ffff:169.254.169.254', 'cloud metadata'],
      ['::ffff:10.0.0.1', 'private'],
      ['::127.0.0.1', 'loopback'],
      ['64:ff9b::10.0.0.1', 'private'],
      ['2002:7f00:1::', 'loopback'],
      ['2001:0:4136:e378:8000:63bf:80ff:fffe', 'loopback'], // Teredo client 127.0.0.1 (inverted)
    ];
    for (const [address, kind] of expected) assert.equal(classOf(address), kind, address);
  });

  it('leaves globally reachable addresses alone', () => {
    for (const address of ['8.8.8.8', '1.1.1.1', '100.128.0.1', '172.32.0.1', '2606:4700::1111', '::ffff:8.8.8.8']) {
      assert.equal(classOf(address), undefined, address);
    }
  });

  it('knows the cloud metadata host names', () => {
    assert.ok(isMetadataHostName('metadata.google.internal'));
    assert.ok(!isMetadataHostName('metadata.example.com'));
  });
});
