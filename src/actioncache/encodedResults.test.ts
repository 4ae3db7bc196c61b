import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ActionResult } from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import { encodeAndKeep, serializeActionResult } from './encodedResults.js';

function result(exitCode: number): ActionResult {
  return ActionResult.fromPartial({
    exitCode,
    outputFiles: [{ path: 'out/a', digest: { hash: 'a'.repeat(64), sizeBytes: 3 } }],
  });
}

describe('encodedResults', () => {
  it('sends a kept result as its kept encoding, which decodes to the result', () => {
    const kept = result(3);
    const encoding = encodeAndKeep(kept);
    assert.equal(serializeActionResult(kept), encoding);
    assert.deepEqual(ActionResult.decode(encoding), kept);
  });

  it('encodes a copy afresh, so contents inlined into it are sent', () => {
    const kept = result(0);
    encodeAndKeep(kept);
    const copy: ActionResult = { ...kept, stdoutRaw: Buffer.from('hello') };
    const sent = ActionResult.decode(serializeActionResult(copy));
    assert.deepEqual(Buffer.from(sent.stdoutRaw), Buffer.from('hello'));
  });
});
