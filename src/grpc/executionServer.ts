/** gRPC adapters for the Execution and google.longrunning.Operations services. */
import type { ExecutionService } from '../execution/executionService.js';
import type { ClientQueue } from '../execution/scheduler.js';
import type {
  ExecuteRequest,
  ExecutionServer,
  WaitExecutionRequest,
} from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import type { Operation, OperationsServer } from '../gen/google/longrunning/operations.js';
import { invalidArgument, notFound } from '../util/status.js';
import { serverStreaming, unary } from './handlers.js';
import { clientKeyOf, streamOperation, toOperation } from './operationCodec.js';

export function executionServer(service: ExecutionService, queue: ClientQueue): ExecutionServer {
  return {
    execute: serverStreaming<ExecuteRequest, Operation>(async (request, context, call) => {
      const record = await service.execute(request, clientKeyOf(context.metadata, call.getPeer()));
      await streamOperation((onChange) => queue.watch(record.name, onChange), call, context.signal);
    }),
    // Operation names are global (`operations/{id}`): WaitExecution runs in the default instance's context.
    waitExecution: serverStreaming<WaitExecutionRequest, Operation>(async (request, context, call) => {
      if (!(await queue.get(request.name))) throw notFound(`operation ${request.name} not found`);
      await streamOperation((onChange) => queue.watch(request.name, onChange), call, context.signal);
    }),
  };
}

export function operationsServer(queue: ClientQueue): OperationsServer {
  return {
    getOperation: unary(async (request: { name: string }) => {
      const record = await queue.get(request.name);
      if (!record) throw notFound(`operation ${request.name} not found`);
      return toOperation(record);
    }),
    listOperations: unary(async (request: { filter: string; pageSize: number; pageToken: string }) => {
      const all = (await queue.list()).sort((a, b) => a.queuedAtMs - b.queuedAtMs || a.name.localeCompare(b.name));
      const start = request.pageToken ? Number(request.pageToken) : 0;
      if (!Number.isSafeInteger(start) || start < 0) throw invalidArgument(`invalid page_token "${request.pageToken}"`);
      const size = request.pageSize > 0 ? request.pageSize : 1000;
      const page = all.slice(start, start + size);
      return {
        operations: page.map(toOperation),
        nextPageToken: start + size < all.length ? String(start + size) : '',
        unreachable: [],
      };
    }),
    deleteOperation: unary(async (request: { name: string }) => {
      if (!(await queue.delete(request.name))) throw notFound(`operation ${request.name} not found`);
      return {};
    }),
    cancelOperation: unary(async (request: { name: string }) => {
      if (!(await queue.cancel(request.name))) throw notFound(`operation ${request.name} not found`);
      return {};
    }),
    waitOperation: unary(async (request: { name: string; timeout?: { seconds: number; nanos: number } }) => {
      const timeoutMs = request.timeout ? request.timeout.seconds * 1000 + request.timeout.nanos / 1e6 : 60_000;
      if (!(await queue.get(request.name))) throw notFound(`operation ${request.name} not found`);
      const record = await new Promise<Awaited<ReturnType<ClientQueue['get']>>>((resolve, reject) => {
        // watch() reports an already completed operation before it returns its stop function.
        let stop: (() => void) | undefined;
        let settled = false;
        const settle = (result: Awaited<ReturnType<ClientQueue['get']>>) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          stop?.();
          resolve(result);
        };
        const timer = setTimeout(
          () => {
            void queue.get(request.name).then(settle, reject);
          },
          Math.max(0, Math.min(timeoutMs, 10 * 60_000)),
        );
        queue
          .watch(request.name, (r) => {
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
              reject(error);
            },
          );
      });
      if (!record) throw notFound(`operation ${request.name} not found`);
      return toOperation(record);
    }),
  };
}
