import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { rejectsWithCode } from '../../test/support/status.js';
import type { Principal } from '../context/requestContext.js';
import { Code } from '../util/status.js';
import { authorize, instancePatternMatches, mayUse } from './access.js';

describe('instancePatternMatches', () => {
  const cases: [string, string, boolean][] = [
    ['*', '', true],
    ['*', 'ci/linux', true],
    ['', '', true],
    ['', 'ci', false],
    ['ci', 'ci', true],
    ['ci', 'ci/linux', false],
    ['ci/*', 'ci/linux', true],
    ['ci/*', 'ci/linux/arm', true],
    ['ci/*', 'ci', false],
    ['ci/*', 'cx/linux', false],
    ['*/linux', 'ci/linux', true],
    ['*/linux', 'ci/linuxes', false],
    ['a*b*c', 'abc', true],
    ['a*b*c', 'a-b-b-c', true],
    ['a*b*c', 'acb', false],
    ['ab*ba', 'aba', false],
  ];
  for (const [pattern, instance, expected] of cases) {
    it(`${expected ? 'matches' : 'does not match'} "${instance}" with "${pattern}"`, () => {
      assert.equal(instancePatternMatches(pattern, instance), expected);
    });
  }
});

describe('authorize', () => {
  const reader: Principal = { name: 'reader', kind: 'token', scopes: new Set(['read']), instances: ['team/*'] };
  const anonymous: Principal = { name: 'anonymous', kind: 'anonymous', scopes: new Set(['read']), instances: ['*'] };
  const check = async (
    principal: Principal | undefined,
    requirement: Parameters<typeof authorize>[1],
    instance: string,
  ) => authorize(principal, requirement, instance);

  it('lets a principal use its scopes on instances its patterns match', () => {
    assert.doesNotThrow(() => authorize(reader, 'read', 'team/a'));
    assert.equal(mayUse(reader, 'read', 'team/a'), true);
    assert.equal(mayUse(reader, 'read', 'other'), false);
    assert.equal(mayUse(reader, 'ac-write', 'team/a'), false);
  });

  it('refuses an identified caller with PERMISSION_DENIED naming what it lacks', async () => {
    const error = await rejectsWithCode(check(reader, 'ac-write', 'team/a'), Code.PERMISSION_DENIED);
    assert.match(error.message, /token "reader" does not have the "ac-write" scope on instance "team\/a"/);
    await rejectsWithCode(check(reader, 'read', 'other'), Code.PERMISSION_DENIED);
    await rejectsWithCode(check(reader, 'authenticated', ''), Code.PERMISSION_DENIED);
  });

  it('refuses a caller without credentials with UNAUTHENTICATED, since credentials would help', async () => {
    await rejectsWithCode(check(anonymous, 'cas-write', ''), Code.UNAUTHENTICATED);
    await rejectsWithCode(check(undefined, 'read', ''), Code.UNAUTHENTICATED);
    assert.doesNotThrow(() => authorize(anonymous, 'read', 'any'));
  });

  it('lets anyone whose patterns cover the instance call an "authenticated" method, and everyone a public one', () => {
    assert.doesNotThrow(() => authorize(reader, 'authenticated', 'team/x'));
    assert.doesNotThrow(() => authorize(undefined, 'public', 'anything'));
  });
});
