import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatIp, parseIp, parseIpPrefix, parseIpv4, parseIpv6, prefixContains, unmapIpv4 } from './ipAddress.js';

describe('IP addresses', () => {
  it('parses dotted quads strictly, refusing octal-looking and short forms', () => {
    assert.deepEqual(Array.from(parseIpv4('10.0.0.1') ?? []), [10, 0, 0, 1]);
    for (const text of ['127.1', '010.0.0.1', '256.0.0.1', '1.2.3.4.5', '0x7f.0.0.1', '', ' 1.2.3.4']) {
      assert.equal(parseIpv4(text), undefined, text);
    }
  });

  it('parses IPv6 with compression, brackets, zones and a trailing IPv4 part', () => {
    assert.equal(formatIp(parseIpv6('::1') as Uint8Array), '::1');
    assert.equal(formatIp(parseIpv6('[fe80::1%eth0]') as Uint8Array), 'fe80::1');
    assert.equal(formatIp(parseIpv6('::ffff:127.0.0.1') as Uint8Array), '::ffff:7f00:1');
    assert.equal(formatIp(parseIpv6('2001:db8:0:0:1:0:0:1') as Uint8Array), '2001:db8::1:0:0:1');
    assert.equal(formatIp(parseIpv6('0:0:0:0:0:0:0:0') as Uint8Array), '::');
    for (const text of ['1::2::3', '1:2:3:4:5:6:7:8:9', '12345::', 'g::1', ':::', '1:2:3:4:5:6:7', '::1.2.3']) {
      assert.equal(parseIpv6(text), undefined, text);
    }
  });

  it('reads an IPv4-mapped IPv6 address as its IPv4 address', () => {
    assert.equal(formatIp(unmapIpv4(parseIp('::ffff:10.1.2.3') as Uint8Array)), '10.1.2.3');
    assert.equal(formatIp(unmapIpv4(parseIp('::1') as Uint8Array)), '::1');
  });

  it('matches prefixes of both families, IPv4 ones also against mapped addresses', () => {
    const ten = parseIpPrefix('10.0.0.0/8');
    assert.ok(ten);
    assert.ok(prefixContains(ten, parseIp('10.255.0.1') as Uint8Array));
    assert.ok(prefixContains(ten, parseIp('::ffff:10.0.0.1') as Uint8Array));
    assert.ok(!prefixContains(ten, parseIp('11.0.0.1') as Uint8Array));
    const ula = parseIpPrefix('fc00::/7');
    assert.ok(ula);
    assert.ok(prefixContains(ula, parseIp('fdff::1') as Uint8Array));
    assert.ok(!prefixContains(ula, parseIp('fe00::1') as Uint8Array));
    assert.ok(!prefixContains(ula, parseIp('10.0.0.1') as Uint8Array));
    assert.equal(parseIpPrefix('10.0.0.0/33'), undefined);
    assert.equal(parseIpPrefix('10.0.0.0/'), undefined);
    assert.equal(parseIpPrefix('host/8'), undefined);
    assert.equal(parseIpPrefix('1.2.3.4')?.length, 32);
  });
});
