/**
 * The gRPC health checking protocol (grpc.health.v1.Health) and server
 * reflection (grpc.reflection.v1 and v1alpha) on the gRPC port: thin adapters
 * over a health source (what the server says about itself and each service) and
 * the ReflectionIndex. Load balancers, Kubernetes gRPC probes and
 * grpc_health_probe use the first; grpcurl and similar tools the second.
 * `granary serve` and `granary storage` add both with addHealthAndReflection.
 */
import type { ServerDuplexStream } from '@grpc/grpc-js';
import type { RequestContext } from '../context/requestContext.js';
import {
  type HealthCheckRequest,
  type HealthCheckResponse,
  type HealthServer,
  HealthService,
  HealthCheckResponse_ServingStatus as ServingStatusValue,
} from '../gen/grpc/health/v1/health.js';
import {
  type ServerReflectionRequest,
  type ServerReflectionResponse,
  type ServerReflectionServer,
  ServerReflectionService,
} from '../gen/grpc/reflection/v1/reflection.js';
import { ServerReflectionService as AlphaServerReflectionService } from '../gen/grpc/reflection/v1alpha/reflection.js';
import { notFound } from '../util/status.js';
import { callSecurityOf } from './callSecurity.js';
import { serverStreaming, unary, writeWithBackpressure } from './handlers.js';
import { ReflectionIndex } from './reflection.js';
import type { GrpcServer } from './server.js';
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

/**
 * The health of a server while it is open: every service it serves is SERVING
 * (unless `override` says otherwise for one), and all are NOT_SERVING once
 * `closing()` is true; undefined for a service it does not serve.
 */
export function servingHealth(
  server: Pick<GrpcServer, 'serviceNames'>,
  closing: () => boolean,
  override?: HealthSource,
): HealthSource {
  return async (service) => {
    if (service !== '' && !server.serviceNames().includes(service)) return undefined;
    if (closing()) return 'NOT_SERVING';
    return (await override?.(service)) ?? 'SERVING';
  };
}

/** Adds grpc.health.v1 (answering from `health`) and reflection (v1 and v1alpha) of everything the server serves. */
export function addHealthAndReflection(server: GrpcServer, health: HealthSource): void {
  server.addService(HealthService, healthServer(health));
  const reflection = new ReflectionIndex(() => server.serviceNames());
  server.addService(ServerReflectionService, reflectionServer(reflection));
  server.addService(AlphaServerReflectionService, reflectionServer(reflection));
}
