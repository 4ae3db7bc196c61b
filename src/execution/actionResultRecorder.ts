/**
 * What a finished action leaves in the action cache: its result, when it
 * succeeded (status OK, exit code 0) and the action may be cached. The
 * RecordingWorkerQueue calls it before anyone hears the operation is done.
 */
import type { ActionCache } from '../actioncache/actionCache.js';
import type { RequestContext } from '../context/requestContext.js';
import { resolveDigestFunction } from '../digest/digest.js';
import { Code } from '../util/status.js';
import type { OperationRecord } from './types.js';

/** Records what a completed operation should leave behind. */
export interface CompletionRecorder {
  /** Called with the operation as it is about to complete (stage COMPLETED, its response set). */
  record(context: RequestContext, operation: OperationRecord): Promise<void>;
}

/** Stores successful results of cacheable actions in the action cache. */
export class ActionResultRecorder implements CompletionRecorder {
  constructor(private readonly actionCache: ActionCache) {}

  async record(context: RequestContext, operation: OperationRecord): Promise<void> {
    const response = operation.response;
    const result = response?.result;
    if (!response || !result || operation.request.doNotCache) return;
    if ((response.status?.code ?? Code.OK) !== Code.OK || result.exitCode !== 0) return;
    await this.actionCache.put(
      context,
      {
        instanceName: operation.request.instanceName,
        digestFunction: resolveDigestFunction(operation.request.digestFunction),
        actionDigest: operation.request.actionDigest,
      },
      result,
    );
  }
}
