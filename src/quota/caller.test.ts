import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { backgroundContext, type Principal, type RequestContext, type Scope } from '../context/requestContext.js';
import { peerHost, quotaCallerOf } from './caller.js';

const principal = (kind: Principal['kind'], name: string, scopes: Scope[]): Principal => ({
  kind,
  name,
  scopes: new Set(scopes),
  instances: ['*'],
});
const contextOf = (who: Principal | undefined, peer?: string): RequestContext => ({
  ...backgroundContext(),
  principal: who,
  peer,
});

describe('quota callers', () => {
  it('reads the host of every peer form grpc-js reports', () => {
    assert.equal(peerHost('ipv4:10.0.0.5:51234'), '10.0.0.5');
    assert.equal(peerHost('127.0.0.1:8980'), '127.0.0.1');
    assert.equal(peerHost('ipv6:[::1]:51234'), '::1');
    assert.equal(peerHost('[fe80::1]:80'), 'fe80::1');
    assert.equal(peerHost('unix:/run/granary.sock'), 'unix');
    assert.equal(peerHost(undefined), 'unknown');
  });

  it('keys anonymous callers by their host, so connections from one machine share a quota', () => {
    const anonymous = principal('anonymous', 'anonymous', ['read', 'execute', 'bots']);
    const a = quotaCallerOf(contextOf(anonymous, '10.0.0.5:1000'));
    const b = quotaCallerOf(contextOf(anonymous, '10.0.0.5:2000'));
    const c = quotaCallerOf(contextOf(anonymous, '10.0.0.6:1000'));
    assert.equal(a?.key, b?.key);
    assert.notEqual(a?.key, c?.key);
    assert.equal(a?.label, 'anonymous caller from 10.0.0.5');
  });

  it('keys authenticated callers by principal, and exempts the server itself and authenticated workers', () => {
    const alice = quotaCallerOf(contextOf(principal('token', 'alice', ['execute']), '10.0.0.5:1'));
    assert.equal(alice?.key, 'token:alice');
    assert.equal(quotaCallerOf(backgroundContext()), undefined);
    assert.equal(quotaCallerOf(contextOf(principal('token', 'worker-7', ['bots', 'cas-write']))), undefined);
    assert.equal(quotaCallerOf(contextOf(undefined)), undefined);
  });
});
