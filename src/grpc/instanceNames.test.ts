import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Code, StatusError } from '../util/status.js';
import {
  botParentInstance,
  botSessionInstance,
  instanceNameField,
  readResourceInstance,
  writeResourceInstance,
} from './instanceNames.js';

const HASH = 'a'.repeat(64);

describe('instance names of requests', () => {
  it('reads the instance_name field, and the default instance when a request has none', () => {
    assert.equal(instanceNameField({ instanceName: 'ci/linux', blobDigests: [] }), 'ci/linux');
    assert.equal(instanceNameField({ name: 'operations/1' }), '');
    assert.equal(instanceNameField(undefined), '');
  });

  it('reads the instance of ByteStream read names, with and without compression', () => {
    assert.equal(readResourceInstance({ resourceName: `blobs/${HASH}/5` }), '');
    assert.equal(readResourceInstance({ resourceName: `a/b/blobs/${HASH}/5` }), 'a/b');
    assert.equal(readResourceInstance({ resourceName: `main/compressed-blobs/zstd/${HASH}/5` }), 'main');
  });

  it('reads the instance of ByteStream upload names and leaves an empty name to the adapter', () => {
    assert.equal(writeResourceInstance({ resourceName: `uploads/u1/blobs/${HASH}/5` }), '');
    assert.equal(writeResourceInstance({ resourceName: `x/y/uploads/u1/blobs/${HASH}/5/meta` }), 'x/y');
    assert.equal(writeResourceInstance({ resourceName: '' }), '');
  });

  it('rejects a resource name whose instance is malformed with INVALID_ARGUMENT', () => {
    for (const resourceName of [`a//blobs/${HASH}/5`, `operations/blobs/${HASH}/5`, 'nothing-here']) {
      assert.throws(
        () => readResourceInstance({ resourceName }),
        (error: unknown) => error instanceof StatusError && error.code === Code.INVALID_ARGUMENT,
        resourceName,
      );
    }
    assert.throws(
      () => writeResourceInstance({ resourceName: `blobs/${HASH}/5` }),
      (error: unknown) => error instanceof StatusError && error.code === Code.INVALID_ARGUMENT,
    );
  });

  it('reads the instance of bot session parents and names', () => {
    assert.equal(botParentInstance({ parent: 'farm/a' }), 'farm/a');
    assert.equal(botSessionInstance({ name: 'farm/a/botSessions/123' }), 'farm/a');
    assert.equal(botSessionInstance({ name: 'botSessions/123' }), '');
  });
});
