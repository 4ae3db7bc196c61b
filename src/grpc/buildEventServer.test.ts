import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ClientDuplexStream } from '@grpc/grpc-js';
import { type Connection, connect } from '../client/connection.js';
import { BuildEvent as BazelEvent } from '../gen/build_event_stream/build_event_stream.js';
import {
  PublishBuildEventClient,
  type PublishBuildToolEventStreamRequest,
  type PublishBuildToolEventStreamResponse,
} from '../gen/google/devtools/build/v1/publish_build_event.js';
import { InvocationStore } from '../invocations/invocationStore.js';
import { type RunningFarm, startFarm } from '../server/farm.js';

const STREAM_ID = { buildId: 'b', invocationId: 'invocation-under-test', component: 3 };

function request(sequenceNumber: number, event: Partial<BazelEvent>): PublishBuildToolEventStreamRequest {
  return {
    orderedBuildEvent: {
      streamId: STREAM_ID,
      sequenceNumber,
      event: {
        eventTime: undefined,
        bazelEvent: {
          typeUrl: 'type.googleapis.com/build_event_stream.BuildEvent',
          value: Buffer.from(BazelEvent.encode(BazelEvent.fromPartial(event)).finish()),
        },
      } as never,
    },
    notificationKeywords: [],
    projectId: '',
    checkPrecedingLifecycleEventsPresent: false,
  };
}

/** Sends the requests, half-closes, and collects the acknowledgements and the final status. */
async function publish(
  client: InstanceType<typeof PublishBuildEventClient>,
  requests: PublishBuildToolEventStreamRequest[],
): Promise<{ acknowledged: number[]; code: number }> {
  const call: ClientDuplexStream<PublishBuildToolEventStreamRequest, PublishBuildToolEventStreamResponse> =
    client.publishBuildToolEventStream();
  const acknowledged: number[] = [];
  call.on('data', (response: PublishBuildToolEventStreamResponse) => acknowledged.push(response.sequenceNumber));
  const ended = new Promise<number>((resolve) => {
    call.on('status', (status) => resolve(status.code));
    call.on('error', () => {});
  });
  for (const each of requests) call.write(each);
  call.end();
  return { acknowledged, code: await ended };
}

describe('the Build Event Service', () => {
  let farm: RunningFarm;
  let connection: Connection;
  let client: InstanceType<typeof PublishBuildEventClient>;
  const invocations = new InvocationStore();

  before(async () => {
    farm = await startFarm({
      listen: '127.0.0.1:0',
      cas: { memory: { maxSizeBytes: 16 * 1024 * 1024 } },
      actionCache: { memory: { maxSizeBytes: 1024 * 1024 } },
      buildEvents: invocations,
    });
    connection = connect(`grpc://${farm.address}`);
    client = connection.channel.client(PublishBuildEventClient);
  });

  after(async () => {
    connection.close();
    await farm.close();
  });

  it('acknowledges every event of a stream in order and records the invocation', async () => {
    const result = await publish(client, [
      request(1, { id: { started: {} }, started: { command: 'build' } as never }),
      request(2, { id: { pattern: { pattern: ['//app:all'] } } }),
      request(3, { id: { buildFinished: {} }, finished: { exitCode: { name: 'SUCCESS', code: 0 } } as never }),
    ]);
    assert.equal(result.code, 0);
    assert.deepEqual(result.acknowledged, [1, 2, 3]);
    const invocation = invocations.get('invocation-under-test');
    assert.equal(invocation?.command, 'build');
    assert.deepEqual(invocation?.patterns, ['//app:all']);
    assert.deepEqual(invocation?.exitCode, { name: 'SUCCESS', code: 0 });
  });

  it('refuses an event that skips a sequence number with INVALID_ARGUMENT, after acknowledging those before it', async () => {
    const result = await publish(client, [request(1, { id: { progress: { opaqueCount: 0 } } }), request(3, {})]);
    assert.equal(result.code, 3);
    assert.deepEqual(result.acknowledged, [1]);
  });
});
