/** Converts scheduler operations into google.longrunning.Operation messages. */
import type { ServerWritableStream } from '@grpc/grpc-js';
import type { OperationRecord, Stage } from '../execution/types.js';
import {
  ExecuteOperationMetadata,
  ExecuteResponse,
  ExecutionStage_Value,
} from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import type { Operation } from '../gen/google/longrunning/operations.js';

const TYPE_PREFIX = 'type.googleapis.com/build.bazel.remote.execution.v2.';

const STAGES: Record<Stage, ExecutionStage_Value> = {
  QUEUED: ExecutionStage_Value.QUEUED,
  EXECUTING: ExecutionStage_Value.EXECUTING,
  COMPLETED: ExecutionStage_Value.COMPLETED,
};

export function toOperation(record: OperationRecord): Operation {
  const metadata = ExecuteOperationMetadata.encode({
    stage: STAGES[record.stage],
    actionDigest: record.request.actionDigest,
    stdoutStreamName: '',
    stderrStreamName: '',
    partialExecutionMetadata: undefined,
    digestFunction: record.request.digestFunction,
  }).finish();
  const operation: Operation = {
    name: record.name,
    metadata: { typeUrl: `${TYPE_PREFIX}ExecuteOperationMetadata`, value: Buffer.from(metadata) },
    done: record.stage === 'COMPLETED',
  };
  if (record.stage === 'COMPLETED' && record.response) {
    operation.response = {
      typeUrl: `${TYPE_PREFIX}ExecuteResponse`,
      value: Buffer.from(ExecuteResponse.encode(record.response).finish()),
    };
  }
  return operation;
}

/** Streams an operation's changes until it completes, the call's context aborts or the call ends. */
export function streamOperation(
  watch: (onChange: (record: OperationRecord) => void) => Promise<() => void>,
  call: ServerWritableStream<unknown, Operation>,
  signal: AbortSignal,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let unwatch: (() => void) | undefined;
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      signal.removeEventListener('abort', finish);
      unwatch?.();
      resolve();
    };
    if (signal.aborted) finish();
    signal.addEventListener('abort', finish, { once: true });
    call.on('close', finish);
    watch((record) => {
      if (finished) return;
      call.write(toOperation(record));
      if (record.stage === 'COMPLETED') finish();
    }).then(
      (stop) => {
        unwatch = stop;
        if (finished) stop();
      },
      (error: unknown) => {
        finished = true;
        reject(error);
      },
    );
  });
}
