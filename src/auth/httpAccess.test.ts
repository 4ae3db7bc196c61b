import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Code, StatusError } from '../util/status.js';
import { httpStatusOfRefusal } from './httpAccess.js';

describe('httpStatusOfRefusal', () => {
  it('answers 401 to a caller without valid credentials and 403 to one outside its scopes', () => {
    assert.equal(httpStatusOfRefusal(new StatusError(Code.UNAUTHENTICATED, 'no token')), 401);
    assert.equal(httpStatusOfRefusal(new StatusError(Code.PERMISSION_DENIED, 'not yours')), 403);
  });

  it('answers 500 to any other failure, so a fault never reads as a refusal', () => {
    assert.equal(httpStatusOfRefusal(new StatusError(Code.INTERNAL, 'broken')), 500);
    assert.equal(httpStatusOfRefusal(new Error('plain')), 500);
  });
});
