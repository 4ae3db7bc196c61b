/**
 * Observation of every served call for metrics and logs: a grpc-js server
 * interceptor that reports, once per call, its method, final status code,
 * duration and message bytes in and out to the server's CallInterceptors.
 * It sits innermost, next to grpc-js's own call, so it also sees the calls
 * authentication refuses. Message sizes come from the service definition's
 * (de)serializers, which addService wraps with countMessageBytes.
 */
import {
  ServerInterceptingCall as InterceptingCall,
  type Metadata,
  type ServerInterceptingCall,
  type ServerInterceptor,
  type ServiceDefinition,
} from '@grpc/grpc-js';
import type { Principal } from '../context/requestContext.js';
import { Code } from '../util/status.js';
import { authorizationRequestOf } from './authorization.js';
import { isPastDeadline } from './callContext.js';
import { peekCallSecurity } from './callSecurity.js';

/** One finished call, as metrics and access logs want it. */
export interface CallSummary {
  readonly service: string;
  readonly method: string;
  readonly code: Code;
  readonly durationMs: number;
  /** Serialized request messages received (without gRPC framing). */
  readonly bytesIn: number;
  /** Serialized response messages sent (without gRPC framing). */
  readonly bytesOut: number;
  readonly peer: string;
  /** The authenticated caller; undefined when the call was refused or ended before authentication. */
  readonly principal: Principal | undefined;
}

/**
 * Told about every call when it ends. Called synchronously on the event loop, so
 * it must be cheap and must not throw (a throw is caught and dropped).
 */
export interface CallInterceptor {
  onCallEnd(summary: CallSummary): void;
}

const messageBytes = new WeakMap<object, number>();

/** A copy of `definition` whose (de)serializers remember each message's size for the observer. */
export function countMessageBytes<Implementation>(
  definition: ServiceDefinition<Implementation>,
): ServiceDefinition<Implementation> {
  const counted: Record<string, unknown> = {};
  for (const [name, method] of Object.entries(definition) as [string, ServiceDefinition[string]][]) {
    counted[name] = {
      ...method,
      requestDeserialize: (bytes: Buffer) => {
        const message = method.requestDeserialize(bytes);
        if (typeof message === 'object' && message !== null) messageBytes.set(message, bytes.length);
        return message;
      },
      responseSerialize: (message: unknown) => {
        const bytes = method.responseSerialize(message);
        if (typeof message === 'object' && message !== null) messageBytes.set(message, bytes.length);
        return bytes;
      },
    };
  }
  return counted as ServiceDefinition<Implementation>;
}

function sizeOf(message: unknown): number {
  return typeof message === 'object' && message !== null ? (messageBytes.get(message) ?? 0) : 0;
}

/** The interceptor that reports every call to `interceptors`; must be first (innermost) in the server's list. */
export function observationInterceptor(interceptors: readonly CallInterceptor[]): ServerInterceptor {
  return (methodDefinition, nextCall) => {
    const { service, method } = authorizationRequestOf(methodDefinition.path);
    const startedMs = performance.now();
    let bytesIn = 0;
    let bytesOut = 0;
    let metadata: Metadata | undefined;
    let ended = false;
    const end = (code: Code) => {
      if (ended) return;
      ended = true;
      const summary: CallSummary = {
        service,
        method,
        code,
        durationMs: performance.now() - startedMs,
        bytesIn,
        bytesOut,
        peer: nextCall.getPeer(),
        principal: metadata ? peekCallSecurity(metadata)?.principal : undefined,
      };
      for (const interceptor of interceptors) {
        try {
          interceptor.onCallEnd(summary);
        } catch {
          // An observer's failure must not change the call.
        }
      }
    };
    const call: ServerInterceptingCall = new InterceptingCall(nextCall, {
      start: (next) =>
        next({
          onReceiveMetadata: (received, passOn) => {
            metadata = received;
            passOn(received);
          },
          onReceiveMessage: (message, passOn) => {
            bytesIn += sizeOf(message);
            passOn(message);
          },
          // grpc-js reports the end of every call here, after any status it sent itself
          // (deadline, malformed messages) or when the client went away.
          onCancel: () => end(isPastDeadline(nextCall.getDeadline()) ? Code.DEADLINE_EXCEEDED : Code.CANCELLED),
        }),
      sendMessage: (message, passOn) => {
        // Being innermost, passing on serializes the message at once.
        passOn(message);
        bytesOut += sizeOf(message);
      },
      sendStatus: (status, passOn) => {
        end(status.code as number as Code);
        passOn(status);
      },
    });
    return call;
  };
}
