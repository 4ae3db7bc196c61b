/**
 * Client side of Execute: sends the request, follows the Operation stream to its
 * end (reconnecting with WaitExecution if the stream breaks), and returns the
 * ExecuteResponse. Progress callbacks report the stage.
 */
import type { ClientReadableStream } from '@grpc/grpc-js';
import type { Digest } from '../digest/digest.js';
import {
  ExecuteOperationMetadata,
  ExecuteResponse,
  ExecutionStage_Value,
} from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import type { Operation } from '../gen/google/longrunning/operations.js';
import { Code, StatusError } from '../util/status.js';
import { type Connection, fromServiceError } from './connection.js';

export interface ExecuteOptions {
  skipCacheLookup?: boolean;
  priority?: number;
  onStage?: (stage: 'QUEUED' | 'EXECUTING' | 'COMPLETED') => void;
}

export async function executeRemotely(
  connection: Connection,
  actionDigest: Digest,
  options: ExecuteOptions = {},
): Promise<ExecuteResponse> {
  let operationName: string | undefined;
  for (let attempt = 0; attempt < 5; attempt++) {
    const stream: ClientReadableStream<Operation> = operationName
      ? connection.execution.waitExecution({ name: operationName })
      : connection.execution.execute({
          instanceName: connection.instanceName,
          skipCacheLookup: options.skipCacheLookup ?? false,
          actionDigest,
          executionPolicy: { priority: options.priority ?? 0 },
          resultsCachePolicy: undefined,
          digestFunction: 0,
          inlineStdout: false,
          inlineStderr: false,
          inlineOutputFiles: [],
        });
    try {
      for await (const operation of stream as AsyncIterable<Operation>) {
        operationName = operation.name;
        if (operation.metadata?.value) {
          const stage = ExecuteOperationMetadata.decode(operation.metadata.value).stage;
          if (stage === ExecutionStage_Value.QUEUED) options.onStage?.('QUEUED');
          else if (stage === ExecutionStage_Value.EXECUTING) options.onStage?.('EXECUTING');
        }
        if (operation.done) {
          options.onStage?.('COMPLETED');
          if (operation.error) throw new StatusError(operation.error.code, operation.error.message);
          if (!operation.response) throw new StatusError(Code.INTERNAL, 'operation finished without a response');
          return ExecuteResponse.decode(operation.response.value);
        }
      }
    } catch (error) {
      if (error instanceof StatusError) throw error;
      const status = fromServiceError(error as never);
      // A broken stream of a known operation is resumed; anything else is final.
      if (!operationName || (status.code !== Code.UNAVAILABLE && status.code !== Code.INTERNAL)) throw status;
    }
  }
  throw new StatusError(Code.UNAVAILABLE, `lost the execution stream of ${operationName ?? 'the action'} too often`);
}
