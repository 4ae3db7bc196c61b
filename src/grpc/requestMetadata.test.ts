import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Metadata } from '@grpc/grpc-js';
import { RequestMetadata } from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import { parseRequestMetadata, REQUEST_METADATA_HEADER } from './requestMetadata.js';

function withHeader(value: Buffer): Metadata {
  const metadata = new Metadata();
  metadata.set(REQUEST_METADATA_HEADER, value);
  return metadata;
}

describe('parseRequestMetadata', () => {
  it('returns empty metadata when the header is absent', () => {
    assert.deepEqual(parseRequestMetadata(new Metadata()), {});
  });

  it('keeps only the fields the client filled in', () => {
    const header = RequestMetadata.encode({
      toolDetails: undefined,
      actionId: '',
      toolInvocationId: 'inv-1',
      correlatedInvocationsId: '',
      actionMnemonic: '',
      targetId: '',
      configurationId: '',
    }).finish();
    assert.deepEqual(parseRequestMetadata(withHeader(Buffer.from(header))), { toolInvocationId: 'inv-1' });
  });

  it('ignores a header that is not a RequestMetadata message rather than failing the call', () => {
    // Field 1 announced as a 100-byte length-delimited value with 2 bytes present.
    assert.deepEqual(parseRequestMetadata(withHeader(Buffer.from([0x0a, 0x64, 0x01, 0x02]))), {});
    // Wire type 7 does not exist.
    assert.deepEqual(parseRequestMetadata(withHeader(Buffer.from([0x0f, 0xff, 0xff]))), {});
  });
});
