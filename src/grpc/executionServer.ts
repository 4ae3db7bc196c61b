/** gRPC adapters for the Execution and google.longrunning.Operations services. */
import { backgroundContext, type RequestContext } from '../context/requestContext.js';
import type { ExecutionService } from '../execution/executionService.js';
import type { ClientQueue } from '../execution/scheduler.js';
import type { OperationRecord } from '../execution/types.js';
import type {
  ExecuteRequest,
  ExecutionServer,
  WaitExecutionRequest,
} from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import type { Operation, OperationsServer } from '../gen/google/longrunning/operations.js';
import { notFound } from '../util/status.js';
import { msFromDuration } from '../util/time.js';
import { serverStreaming, unary } from './handlers.js';
import type { InstanceNameOf } from './instanceNames.js';
import { streamOperation, toOperation } from './operationCodec.js';

export function executionServer(service: ExecutionService, queue: ClientQueue): ExecutionServer {
  return {
    execute: serverStreaming<ExecuteRequest, Operation>(async (request, context, call) => {
      const record = await service.execute(context, request);
      await streamOperation((onChange) => queue.watch(context, record.name, onChange), call, context.signal);
    }),
    // Operation names are global (`operations/{id}`): WaitExecution runs in the operation's instance.
    waitExecution: serverStreaming<WaitExecutionRequest, Operation>(
      async (request, context, call) => {
        if (!(await queue.get(context, request.name))) throw notFound(`operation ${request.name} not found`);
        await streamOperation((onChange) => queue.watch(context, request.name, onChange), call, context.signal);
      },
      { instanceName: operationInstance(queue) },
    ),
  };
}

/**
 * The instance an operation was submitted to: operation names are global, so a
 * caller is authorized against the operation's own instance. Unknown names get
 * the default instance (the handler then answers NOT_FOUND).
 */
function operationInstance(queue: ClientQueue): InstanceNameOf<{ name: string }> {
  return async (request) => (await queue.get(backgroundContext(), request.name))?.request.instanceName ?? '';
}

export function operationsServer(queue: ClientQueue): OperationsServer {
  const byOperation = { instanceName: operationInstance(queue) };
  return {
    getOperation: unary(async (request: { name: string }, context) => {
      const record = await queue.get(context, request.name);
      if (!record) throw notFound(`operation ${request.name} not found`);
      return toOperation(record);
    }, byOperation),
    listOperations: unary(async (request: { filter: string; pageSize: number; pageToken: string }, context) => {
      const page = await queue.list(context, {
        pageSize: request.pageSize > 0 ? request.pageSize : 1000,
        pageToken: request.pageToken,
      });
      return { operations: page.operations.map(toOperation), nextPageToken: page.nextPageToken, unreachable: [] };
    }),
    deleteOperation: unary(async (request: { name: string }, context) => {
      if (!(await queue.delete(context, request.name))) throw notFound(`operation ${request.name} not found`);
      return {};
    }, byOperation),
    cancelOperation: unary(async (request: { name: string }, context) => {
      if (!(await queue.cancel(context, request.name))) throw notFound(`operation ${request.name} not found`);
      return {};
    }, byOperation),
    waitOperation: unary(async (request: { name: string; timeout?: { seconds: number; nanos: number } }, context) => {
      const timeoutMs = request.timeout ? msFromDuration(request.timeout) : 60_000;
      if (!(await queue.get(context, request.name))) throw notFound(`operation ${request.name} not found`);
      const record = await waitForCompletion(
        context,
        queue,
        request.name,
        Math.max(0, Math.min(timeoutMs, 10 * 60_000)),
      );
      if (!record) throw notFound(`operation ${request.name} not found`);
      return toOperation(record);
    }, byOperation),
  };
}

/** The operation once it completes, or as it stands after timeoutMs. */
function waitForCompletion(
  context: RequestContext,
  queue: ClientQueue,
  name: string,
  timeoutMs: number,
): Promise<OperationRecord | undefined> {
  return new Promise((resolve, reject) => {
    // watch() reports an already completed operation before it returns its stop function.
    let stop: (() => void) | undefined;
    let settled = false;
    const settle = (result: OperationRecord | undefined) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      context.signal.removeEventListener('abort', abandon);
      stop?.();
      resolve(result);
    };
    // A caller that went away (cancelled, or past its deadline) stops the wait and the watch at once.
    const abandon = () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      stop?.();
      reject(context.signal.reason);
    };
    const timer = setTimeout(() => {
      void queue.get(context, name).then(settle, reject);
    }, timeoutMs);
    queue
      .watch(context, name, (r) => {
        if (r.stage === 'COMPLETED') settle(r);
      })
      .then(
        (s) => {
          stop = s;
          if (settled) s();
        },
        (error: unknown) => {
          settled = true;
          clearTimeout(timer);
          context.signal.removeEventListener('abort', abandon);
          reject(error);
        },
      );
    if (context.signal.aborted) abandon();
    else context.signal.addEventListener('abort', abandon, { once: true });
  });
}
