/**
 * Carries a request context onto outgoing gRPC calls: the context's deadline
 * becomes the call's deadline and its abort cancels the call. So work that a
 * cancelled client caused stops on the next server too, not only on this one.
 */
import { type CallOptions, type ClientUnaryCall, Metadata, type ServiceError } from '@grpc/grpc-js';
import { type RequestContext, throwIfAborted } from '../context/requestContext.js';
import { fromServiceError } from './connection.js';

/** The grpc-js options of a call made on behalf of `context`. */
export function callOptionsOf(context: RequestContext): CallOptions {
  return context.deadlineMs === undefined ? {} : { deadline: context.deadlineMs };
}

/** Cancels `call` when the context aborts; returns the function that stops watching. */
export function cancelOnAbort(context: RequestContext, call: { cancel(): void }): () => void {
  if (context.signal.aborted) {
    call.cancel();
    return () => {};
  }
  const onAbort = () => call.cancel();
  context.signal.addEventListener('abort', onAbort, { once: true });
  return () => context.signal.removeEventListener('abort', onAbort);
}

/**
 * A unary call made on behalf of `context`, as a promise; failures become
 * StatusErrors. Usage: `await unaryIn(context, (metadata, options, done) => client.method(request, metadata, options, done))`.
 */
export function unaryIn<Res>(
  context: RequestContext,
  invoke: (
    metadata: Metadata,
    options: CallOptions,
    done: (error: ServiceError | null, response?: Res) => void,
  ) => ClientUnaryCall,
): Promise<Res> {
  throwIfAborted(context);
  return new Promise((resolve, reject) => {
    let stopWatching = () => {};
    const call = invoke(new Metadata(), callOptionsOf(context), (error, response) => {
      stopWatching();
      if (error) reject(fromServiceError(error));
      else resolve(response as Res);
    });
    stopWatching = cancelOnAbort(context, call);
  });
}
