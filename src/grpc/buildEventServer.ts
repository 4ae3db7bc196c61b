/**
 * The Build Event Service (google.devtools.build.v1.PublishBuildEvent) on the
 * gRPC port, for Bazel's --bes_backend=grpc://HOST:PORT: every event is recorded
 * in the invocation store and acknowledged by its sequence number, in order, as
 * the protocol asks; the stream ends when Bazel half-closes it. Events out of
 * order are refused, so Bazel retries the stream from what was acknowledged.
 */
import type { ServerDuplexStream } from '@grpc/grpc-js';
import type {
  PublishBuildEventServer,
  PublishBuildToolEventStreamRequest,
  PublishBuildToolEventStreamResponse,
  PublishLifecycleEventRequest,
} from '../gen/google/devtools/build/v1/publish_build_event.js';
import { recordBuildEvent } from '../invocations/bazelEvents.js';
import type { InvocationStore } from '../invocations/invocationStore.js';
import { Code, StatusError } from '../util/status.js';
import { bidiStreaming, unary } from './handlers.js';

export function buildEventServer(store: InvocationStore): PublishBuildEventServer {
  return {
    publishLifecycleEvent: unary(async (request: PublishLifecycleEventRequest) => {
      const ordered = request.buildEvent;
      record(store, ordered?.streamId, ordered?.event);
      return {};
    }),
    publishBuildToolEventStream: bidiStreaming(
      (context, call: ServerDuplexStream<PublishBuildToolEventStreamRequest, PublishBuildToolEventStreamResponse>) =>
        new Promise<void>((resolve, reject) => {
          let expected: number | undefined;
          // Events are recorded and acknowledged as they arrive; the call ends when the client half-closes.
          const onData = (request: PublishBuildToolEventStreamRequest) => {
            try {
              const ordered = request.orderedBuildEvent;
              if (!ordered) throw new StatusError(Code.INVALID_ARGUMENT, 'ordered_build_event is required');
              // Sequence numbers grow by one; a stream Bazel retries starts again where it resumes.
              if (expected !== undefined && ordered.sequenceNumber !== expected) {
                throw new StatusError(
                  Code.INVALID_ARGUMENT,
                  `event ${ordered.sequenceNumber} arrived where event ${expected} was expected`,
                );
              }
              expected = ordered.sequenceNumber + 1;
              record(store, ordered.streamId, ordered.event);
              call.write({ streamId: ordered.streamId, sequenceNumber: ordered.sequenceNumber });
            } catch (error) {
              finish();
              reject(error);
            }
          };
          const onEnd = () => {
            finish();
            resolve();
          };
          const finish = () => {
            call.off('data', onData);
            call.off('end', onEnd);
            context.signal.removeEventListener('abort', onEnd);
          };
          call.on('data', onData);
          call.on('end', onEnd);
          context.signal.addEventListener('abort', onEnd, { once: true });
        }),
    ),
  };
}

function record(
  store: InvocationStore,
  streamId: Parameters<typeof recordBuildEvent>[1],
  event: Parameters<typeof recordBuildEvent>[2],
): void {
  try {
    recordBuildEvent(store, streamId, event);
  } catch (error) {
    throw new StatusError(Code.INVALID_ARGUMENT, `build event does not decode: ${(error as Error).message}`);
  }
}
