/**
 * The gRPC health checking protocol (grpc.health.v1.Health) and server
 * reflection (grpc.reflection.v1 and v1alpha) on the gRPC port: thin adapters
 * over a health source (what the server says about itself and each service) and
 * the ReflectionIndex. Load balancers, Kubernetes gRPC probes and
 * grpc_health_probe use the first; grpcurl and similar tools the second.
 */
import type { ServerDuplexStream } from '@grpc/grpc-js';
import type { RequestContext } from '../context/requestContext.js';
import {
  type HealthCheckRequest,
  type HealthCheckResponse,
  type HealthServer,
  HealthCheckResponse_ServingStatus as ServingStatusValue,
} from '../gen/grpc/health/v1/health.js';
import type {
  ServerReflectionRequest,
  ServerReflectionResponse,
  ServerReflectionServer,
} from '../gen/grpc/reflection/v1/reflection.js';
import { notFound } from '../util/status.js';
import { callSecurityOf } from './callSecurity.js';
import { serverStreaming, unary, writeWithBackpressure } from './handlers.js';
import type { ReflectionIndex } from './reflection.js';
import { toServiceError } from './statusCodec.js';

export type ServingStatus = 'SERVING' | 'NOT_SERVING';

/**
 * The status of a service by its fully qualified name, `''` for the server as a
 * whole; undefined for a service the server does not know.
 */
export type HealthSource = (service: string) => ServingStatus | undefined | Promise<ServingStatus | undefined>;

/** How often Watch looks for a change. */
const WATCH_INTERVAL_MS = 1000;

function wire(status: ServingStatus | undefined): HealthCheckResponse {
  if (status === undefined) return { status: ServingStatusValue.SERVICE_UNKNOWN };
  return { status: status === 'SERVING' ? ServingStatusValue.SERVING : ServingStatusValue.NOT_SERVING };
}

export function healthServer(source: HealthSource, watchIntervalMs = WATCH_INTERVAL_MS): HealthServer {
  return {
    check: unary(async (request: HealthCheckRequest) => {
      const status = await source(request.service);
      if (status === undefined) throw notFound(`unknown service "${request.service}"`);
      return wire(status);
    }),
    watch: serverStreaming<HealthCheckRequest, HealthCheckResponse>(async (request, context, call) => {
      let last: number | undefined;
      while (!context.signal.aborted) {
        const response = wire(await source(request.service));
        if (response.status !== last) {
          last = response.status;
          await writeWithBackpressure(call, response);
        }
        await pause(context, watchIntervalMs);
      }
    }),
  };
}

function pause(context: RequestContext, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      context.signal.removeEventListener('abort', done);
      resolve();
    }
    context.signal.addEventListener('abort', done, { once: true });
  });
}

/** The reflection service: one answer per request, in order, until the client ends the stream. */
export function reflectionServer(index: ReflectionIndex): ServerReflectionServer {
  return {
    serverReflectionInfo: (call: ServerDuplexStream<ServerReflectionRequest, ServerReflectionResponse>) => {
      try {
        // Refuses a call no authentication interceptor saw, as every handler does.
        callSecurityOf(call.metadata);
      } catch (error) {
        call.emit('error', toServiceError(error));
        return;
      }
      const sent = new Set<string>();
      // Answers are small and computed at once, so each is written as its request arrives.
      call.on('data', (request: ServerReflectionRequest) => {
        call.write(index.answer(request, sent));
      });
      call.on('end', () => call.end());
    },
  };
}
