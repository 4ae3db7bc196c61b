import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { actionRequest, successResponse } from '../../test/support/schedulerContract.js';
import type { ActionCache, ActionKey } from '../actioncache/actionCache.js';
import { backgroundContext, type RequestContext } from '../context/requestContext.js';
import type { ActionResult } from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import { Code } from '../util/status.js';
import { ActionResultRecorder } from './actionResultRecorder.js';
import { errorResponse } from './schedulingPolicy.js';
import type { OperationRecord } from './types.js';

/** An action cache that only remembers what was put. */
function fakeActionCache(): { cache: ActionCache; puts: Array<{ key: ActionKey; result: ActionResult }> } {
  const puts: Array<{ key: ActionKey; result: ActionResult }> = [];
  const cache = {
    put: async (_context: RequestContext, key: ActionKey, result: ActionResult) => {
      puts.push({ key, result });
    },
  } as unknown as ActionCache;
  return { cache, puts };
}

const completed = (overrides: Partial<OperationRecord> = {}): OperationRecord => ({
  name: 'operations/x',
  request: actionRequest(1, { instanceName: 'main' }),
  stage: 'COMPLETED',
  queuedAtMs: 0,
  attempts: 1,
  version: 3,
  response: successResponse(0),
  ...overrides,
});

describe('ActionResultRecorder', () => {
  it('stores the result of a successful cacheable action under its instance and digest', async () => {
    const { cache, puts } = fakeActionCache();
    await new ActionResultRecorder(cache).record(backgroundContext(), completed());
    assert.equal(puts.length, 1);
    assert.equal(puts[0]?.key.instanceName, 'main');
    assert.deepEqual(puts[0]?.key.actionDigest, actionRequest(1).actionDigest);
    assert.equal(puts[0]?.result.exitCode, 0);
  });

  it('stores nothing for a failed command, an error status, no result or a do_not_cache action', async () => {
    const { cache, puts } = fakeActionCache();
    const recorder = new ActionResultRecorder(cache);
    await recorder.record(backgroundContext(), completed({ response: successResponse(1) }));
    await recorder.record(backgroundContext(), completed({ response: errorResponse(Code.DEADLINE_EXCEEDED, 'late') }));
    await recorder.record(
      backgroundContext(),
      completed({
        response: { ...successResponse(0), status: { code: Code.DEADLINE_EXCEEDED, message: '', details: [] } },
      }),
    );
    await recorder.record(backgroundContext(), completed({ request: actionRequest(1, { doNotCache: true }) }));
    await recorder.record(backgroundContext(), completed({ response: undefined }));
    assert.deepEqual(puts, []);
  });
});
