/**
 * Wraps async domain calls as grpc-js handlers. Each wrapper builds the call's
 * RequestContext once (deadline, cancellation, instance name, principal, client
 * metadata), asks the server's authorizer, hands `(request, context, call)` to
 * the adapter, and maps thrown StatusErrors to wire statuses the same way
 * everywhere, so no adapter crashes the server or builds a context of its own.
 */
import type {
  Metadata,
  ServerDuplexStream,
  ServerReadableStream,
  ServerUnaryCall,
  ServerWritableStream,
  sendUnaryData,
} from '@grpc/grpc-js';
import type { RequestContext } from '../context/requestContext.js';
import { authorizationRequestOf } from './authorization.js';
import { type CallContext, type ContextSource, contextForCall } from './callContext.js';
import { callSecurityOf } from './callSecurity.js';
import { type InstanceNameOf, instanceNameField } from './instanceNames.js';
import { toServiceError } from './statusCodec.js';

/** What every kind of grpc-js server call offers the wrappers. */
type SurfaceCall = ContextSource & { getPath(): string };

/** How a handler finds its request's instance name; `instance_name` when not given. */
export interface HandlerOptions<Req> {
  instanceName?: InstanceNameOf<Req>;
}

/** Builds and authorizes the context of a call whose (first) request is `request`. */
async function establishContext<Req>(
  call: SurfaceCall,
  request: Req,
  options: HandlerOptions<Req>,
): Promise<CallContext> {
  const security = callSecurityOf(call.metadata);
  // Awaited only when asynchronous: most answers are at hand, and each await is another trip through the microtask queue.
  const named = (options.instanceName ?? instanceNameField)(request);
  const instanceName = typeof named === 'string' ? named : await named;
  const established = contextForCall(call, instanceName, security.principal);
  try {
    const authorized = security.authorizer(established.context, authorizationRequestOf(call.getPath()));
    if (authorized) await authorized;
  } catch (error) {
    established.dispose();
    throw error;
  }
  return established;
}

/**
 * Whether the caller of `call` could make a call of `path` (`/pkg.Service/Method`)
 * in `context`'s instance: for answers that depend on the caller, such as
 * GetCapabilities' `update_enabled` and `exec_enabled`.
 */
export async function callerMay(call: { metadata: Metadata }, context: RequestContext, path: string): Promise<boolean> {
  try {
    await callSecurityOf(call.metadata).authorizer(context, authorizationRequestOf(path));
    return true;
  } catch {
    return false;
  }
}

/** Runs `fn` in the call's context and releases the context when it settles. */
async function runInContext<Req, Result>(
  call: SurfaceCall,
  request: Req,
  options: HandlerOptions<Req>,
  fn: (context: RequestContext) => Promise<Result>,
): Promise<Result> {
  const established = await establishContext(call, request, options);
  try {
    const result = await fn(established.context);
    // Work that stopped because the call was abandoned must not end as a short success.
    established.throwIfEnded();
    return result;
  } finally {
    established.dispose();
  }
}

export function unary<Req, Res>(
  fn: (request: Req, context: RequestContext, call: ServerUnaryCall<Req, Res>) => Promise<Res>,
  options: HandlerOptions<Req> = {},
) {
  return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => {
    runInContext(call, call.request, options, (context) => fn(call.request, context, call)).then(
      (response) => callback(null, response),
      (error: unknown) => callback(toServiceError(error)),
    );
  };
}

export function serverStreaming<Req, Res>(
  fn: (request: Req, context: RequestContext, call: ServerWritableStream<Req, Res>) => Promise<void>,
  options: HandlerOptions<Req> = {},
) {
  return (call: ServerWritableStream<Req, Res>) => {
    runInContext(call, call.request, options, (context) => fn(call.request, context, call)).then(
      () => call.end(),
      (error: unknown) => {
        // grpc-js sends the status of an 'error' event when the stream ends; destroy()
        // would skip that, leaving the client waiting for a status forever.
        if (!call.cancelled) call.emit('error', toServiceError(error));
      },
    );
  };
}

/**
 * A client-streaming handler: the context is built from the first request (where
 * ByteStream Write names its resource); `requests` yields every request, the
 * first included. A call with no request gets the default instance's context.
 */
export function clientStreaming<Req, Res>(
  fn: (requests: AsyncIterable<Req>, context: RequestContext, call: ServerReadableStream<Req, Res>) => Promise<Res>,
  options: HandlerOptions<Req> = {},
) {
  return (call: ServerReadableStream<Req, Res>, callback: sendUnaryData<Res>) => {
    const run = async (): Promise<Res> => {
      const iterator = (call as AsyncIterable<Req>)[Symbol.asyncIterator]();
      const first = await iterator.next();
      const requests: AsyncIterable<Req> = {
        [Symbol.asyncIterator]: async function* () {
          if (first.done) return;
          let exhausted = false;
          try {
            yield first.value;
            for (let next = await iterator.next(); !next.done; next = await iterator.next()) yield next.value;
            exhausted = true;
          } finally {
            // A handler that stops reading early closes the call's stream, as a plain for-await would.
            if (!exhausted) await iterator.return?.();
          }
        },
      };
      const contextOptions: HandlerOptions<Req | undefined> = first.done
        ? { instanceName: () => '' }
        : (options as HandlerOptions<Req | undefined>);
      return runInContext<Req | undefined, Res>(call, first.done ? undefined : first.value, contextOptions, (context) =>
        fn(requests, context, call),
      );
    };
    run().then(
      (response) => callback(null, response),
      (error: unknown) => callback(toServiceError(error)),
    );
  };
}

/**
 * A bidirectional-streaming handler whose requests name no instance (the Build
 * Event Service): the context is the default instance's, built and authorized
 * when the call starts; `fn` reads the call's requests and writes its answers.
 */
export function bidiStreaming<Req, Res>(
  fn: (context: RequestContext, call: ServerDuplexStream<Req, Res>) => Promise<void>,
) {
  return (call: ServerDuplexStream<Req, Res>) => {
    runInContext<undefined, void>(call, undefined, { instanceName: () => '' }, (context) => fn(context, call)).then(
      () => call.end(),
      (error: unknown) => {
        if (!call.cancelled) call.emit('error', toServiceError(error));
      },
    );
  };
}

/** Writes a message, waiting when the stream's buffer is full. */
export async function writeWithBackpressure<Res>(
  call: ServerWritableStream<unknown, Res>,
  message: Res,
): Promise<void> {
  if (call.write(message)) return;
  await new Promise<void>((resolve, reject) => {
    const cleanup = () => {
      call.off('drain', onDrain);
      call.off('close', onClose);
      call.off('error', onClose);
    };
    const onDrain = () => {
      cleanup();
      resolve();
    };
    const onClose = () => {
      cleanup();
      reject(new Error('call closed'));
    };
    call.on('drain', onDrain);
    call.on('close', onClose);
    call.on('error', onClose);
  });
}
