/** gRPC adapter for the ActionCache service. */
import type { ActionCache } from '../actioncache/actionCache.js';
import { serializeActionResult } from '../actioncache/encodedResults.js';
import { validateActionResult } from '../actioncache/validateActionResult.js';
import { parseDigest, resolveDigestFunction } from '../digest/digest.js';
import {
  type ActionCacheServer,
  ActionCacheService,
  type ActionResult,
  type GetActionResultRequest,
  type UpdateActionResultRequest,
} from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import { invalidArgument, notFound } from '../util/status.js';
import { unary } from './handlers.js';

export function actionCacheServer(cache: ActionCache, updateEnabled: boolean): ActionCacheServer {
  return {
    getActionResult: unary(async (request: GetActionResultRequest, context): Promise<ActionResult> => {
      const digestFunction = resolveDigestFunction(request.digestFunction, request.actionDigest?.hash);
      const actionDigest = parseDigest(request.actionDigest, digestFunction, 'action_digest');
      const result = await cache.get(
        context,
        { instanceName: request.instanceName, digestFunction, actionDigest },
        {
          inlineStdout: request.inlineStdout,
          inlineStderr: request.inlineStderr,
          inlineOutputFiles: request.inlineOutputFiles,
        },
      );
      if (!result) throw notFound(`no complete action result for ${actionDigest.hash}/${actionDigest.sizeBytes}`);
      return result;
    }),
    updateActionResult: unary(async (request: UpdateActionResultRequest, context): Promise<ActionResult> => {
      if (!updateEnabled) throw invalidArgument('this server does not accept action results from clients');
      const digestFunction = resolveDigestFunction(request.digestFunction, request.actionDigest?.hash);
      const actionDigest = parseDigest(request.actionDigest, digestFunction, 'action_digest');
      if (!request.actionResult) throw invalidArgument('action_result is missing');
      validateActionResult(request.actionResult, digestFunction);
      await cache.put(
        context,
        { instanceName: request.instanceName, digestFunction, actionDigest },
        request.actionResult,
      );
      return request.actionResult;
    }),
  };
}

/**
 * The ActionCache service definition whose GetActionResult sends a remembered
 * result's kept encoding (see encodedResults.ts); serve actionCacheServer with it.
 */
export const EncodedActionCacheService: typeof ActionCacheService = {
  ...ActionCacheService,
  getActionResult: { ...ActionCacheService.getActionResult, responseSerialize: serializeActionResult },
};
