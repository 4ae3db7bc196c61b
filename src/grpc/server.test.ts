import assert from 'node:assert/strict';
import { after, before, describe, it, mock } from 'node:test';
import { Metadata, Server, ServerCredentials, type ServiceError } from '@grpc/grpc-js';
import { rejectsWithCode } from '../../test/support/status.js';
import { unary as call } from '../client/connection.js';
import type { Principal, RequestContext } from '../context/requestContext.js';
import {
  CapabilitiesClient,
  CapabilitiesService,
  GetCapabilitiesRequest,
  RequestMetadata,
  ServerCapabilities,
} from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import {
  ByteStreamClient,
  type ByteStreamServer,
  ByteStreamService,
  type ReadResponse,
  type WriteRequest,
  type WriteResponse,
} from '../gen/google/bytestream/bytestream.js';
import { Code, StatusError } from '../util/status.js';
import type { AuthenticationRequest } from './authentication.js';
import type { AuthorizationRequest } from './authorization.js';
import type { CallSummary } from './callObservation.js';
import { capabilitiesServer } from './capabilitiesServer.js';
import { type DialedChannel, dial } from './dial.js';
import { clientStreaming, serverStreaming, unary } from './handlers.js';
import { readResourceInstance, writeResourceInstance } from './instanceNames.js';
import { REQUEST_METADATA_HEADER } from './requestMetadata.js';
import { createGrpcServer, type GrpcServer, ListenError } from './server.js';

const HASH = 'a'.repeat(64);
const CAPABILITIES = ServerCapabilities.fromPartial({ cacheCapabilities: { maxBatchTotalSizeBytes: 1234 } });

const TOKEN_HOLDER: Principal = {
  name: 'ci-bot',
  kind: 'token',
  scopes: new Set(['read']),
  instances: ['ci'],
};

/** What the fake services saw, for assertions. */
class Recorder {
  contexts: RequestContext[] = [];
  summaries: CallSummary[] = [];
  authentications: AuthenticationRequest[] = [];
  authorizations: { instanceName: string; request: AuthorizationRequest }[] = [];
  readAbortReason: unknown;
  readEnded: Promise<void> = Promise.resolve();
  summaryArrived: () => void = () => {};

  waitForSummaries(count: number): Promise<void> {
    return new Promise((resolve) => {
      const check = () => {
        if (this.summaries.length >= count) resolve();
        else this.summaryArrived = check;
      };
      check();
    });
  }
}

/** Capabilities and ByteStream services whose handlers only record their contexts. */
function startServer(recorder: Recorder): { server: GrpcServer; ready: Promise<string> } {
  const server = createGrpcServer({
    listeners: [{ address: '127.0.0.1:0' }],
    authenticator: (request) => {
      recorder.authentications.push(request);
      const token = request.metadata.get('authorization')[0];
      if (token === 'Bearer good') return TOKEN_HOLDER;
      if (token === undefined) return { ...TOKEN_HOLDER, name: 'anonymous', kind: 'anonymous' };
      throw new StatusError(Code.UNAUTHENTICATED, 'unknown token');
    },
    authorizer: (context, request) => {
      recorder.authorizations.push({ instanceName: context.instanceName, request });
      if (context.instanceName === 'forbidden') throw new StatusError(Code.PERMISSION_DENIED, 'not yours');
    },
    interceptors: [
      {
        onCallEnd: (summary) => {
          recorder.summaries.push(summary);
          recorder.summaryArrived();
        },
      },
    ],
  });
  server.addService(CapabilitiesService, {
    getCapabilities: unary(async (_request, context) => {
      recorder.contexts.push(context);
      if (context.deadlineMs !== undefined && context.instanceName === 'wait') {
        // Holds the call until the deadline aborts it.
        await new Promise((resolve) => context.signal.addEventListener('abort', resolve, { once: true }));
      }
      return CAPABILITIES;
    }),
  });
  const byteStream: ByteStreamServer = {
    read: serverStreaming(
      async (_request, context, stream) => {
        recorder.contexts.push(context);
        stream.write({ data: Buffer.from('first') } satisfies ReadResponse);
        let ended!: () => void;
        recorder.readEnded = new Promise((resolve) => {
          ended = resolve;
        });
        // Work that lasts until the client goes away.
        await new Promise((resolve) => context.signal.addEventListener('abort', resolve, { once: true }));
        recorder.readAbortReason = context.signal.reason;
        ended();
      },
      { instanceName: readResourceInstance },
    ),
    write: clientStreaming(
      async (requests: AsyncIterable<WriteRequest>, context): Promise<WriteResponse> => {
        recorder.contexts.push(context);
        let committedSize = 0;
        for await (const request of requests) committedSize += request.data.length;
        return { committedSize };
      },
      { instanceName: writeResourceInstance },
    ),
    queryWriteStatus: unary(async () => ({ committedSize: 0, complete: false }), {
      instanceName: writeResourceInstance,
    }),
  };
  server.addService(ByteStreamService, byteStream);
  return { server, ready: server.listen().then(([listener]) => `grpc://${listener?.address}`) };
}

function getCapabilities(
  channel: DialedChannel,
  instanceName: string,
  metadata = new Metadata(),
  deadline?: Date,
): Promise<ServerCapabilities> {
  const client = channel.client(CapabilitiesClient);
  return call<ServerCapabilities>((done) =>
    client.getCapabilities({ instanceName }, metadata, deadline ? { deadline } : {}, done),
  );
}

describe('the server factory and the gRPC edge', () => {
  const recorder = new Recorder();
  let server: GrpcServer;
  let channel: DialedChannel;

  before(async () => {
    const started = startServer(recorder);
    server = started.server;
    channel = dial(await started.ready);
  });
  after(async () => {
    channel.close();
    await server.close();
  });

  it('hands a unary handler the instance name, the authenticated principal, the deadline and the request metadata', async () => {
    const metadata = new Metadata();
    metadata.set('authorization', 'Bearer good');
    const header = RequestMetadata.fromPartial({
      toolDetails: { toolName: 'bazel', toolVersion: '4.2.3' },
      toolInvocationId: 'inv-9',
    });
    metadata.set(REQUEST_METADATA_HEADER, Buffer.from(RequestMetadata.encode(header).finish()));
    const deadline = new Date(Date.now() + 60_000);
    const response = await getCapabilities(channel, 'ci/linux', metadata, deadline);
    assert.equal(response.cacheCapabilities?.maxBatchTotalSizeBytes, 1234);
    const context = recorder.contexts.at(-1) as RequestContext;
    assert.equal(context.instanceName, 'ci/linux');
    assert.equal(context.principal, TOKEN_HOLDER);
    assert.match(context.peer ?? '', /^127\.0\.0\.1:\d+$/);
    assert.deepEqual(context.metadata, { toolName: 'bazel', toolVersion: '4.2.3', toolInvocationId: 'inv-9' });
    assert.ok(context.deadlineMs !== undefined && Math.abs(context.deadlineMs - deadline.getTime()) < 1000);
    const authentication = recorder.authentications.at(-1) as AuthenticationRequest;
    assert.equal(authentication.service, 'build.bazel.remote.execution.v2.Capabilities');
    assert.equal(authentication.method, 'GetCapabilities');
    assert.match(authentication.peer, /^127\.0\.0\.1:\d+$/);
    assert.equal(authentication.transportSecurityType, undefined);
  });

  it('refuses a call with the authenticator’s status before its handler runs', async () => {
    const handled = recorder.contexts.length;
    const metadata = new Metadata();
    metadata.set('authorization', 'Bearer forged');
    const error = await rejectsWithCode(getCapabilities(channel, '', metadata), Code.UNAUTHENTICATED);
    assert.equal(error.message, 'unknown token');
    assert.equal(recorder.contexts.length, handled, 'the handler did not run');
  });

  it('asks the authorizer with the method’s scope and the request’s instance, and answers its refusal', async () => {
    const handled = recorder.contexts.length;
    await rejectsWithCode(getCapabilities(channel, 'forbidden'), Code.PERMISSION_DENIED);
    assert.equal(recorder.contexts.length, handled, 'the handler did not run');
    assert.deepEqual(recorder.authorizations.at(-1), {
      instanceName: 'forbidden',
      request: {
        service: 'build.bazel.remote.execution.v2.Capabilities',
        method: 'GetCapabilities',
        scope: 'authenticated',
      },
    });
  });

  it('reports each finished call with its method, status, caller and message sizes to the interceptors', async () => {
    const before = recorder.summaries.length;
    const metadata = new Metadata();
    metadata.set('authorization', 'Bearer good');
    await getCapabilities(channel, 'ci', metadata);
    const forged = new Metadata();
    forged.set('authorization', 'Bearer forged');
    await rejectsWithCode(getCapabilities(channel, 'ci', forged), Code.UNAUTHENTICATED);
    await recorder.waitForSummaries(before + 2);
    const [ok, refused] = recorder.summaries.slice(before) as [CallSummary, CallSummary];
    assert.equal(ok.service, 'build.bazel.remote.execution.v2.Capabilities');
    assert.equal(ok.method, 'GetCapabilities');
    assert.equal(ok.code, Code.OK);
    assert.equal(ok.bytesIn, GetCapabilitiesRequest.encode({ instanceName: 'ci' }).finish().length);
    assert.equal(ok.bytesOut, ServerCapabilities.encode(CAPABILITIES).finish().length);
    assert.equal(ok.principal, TOKEN_HOLDER);
    assert.ok(ok.durationMs >= 0);
    assert.equal(refused.code, Code.UNAUTHENTICATED);
    assert.equal(refused.bytesIn, 0, 'the request of a refused call is never read');
    assert.equal(refused.principal, undefined);
  });

  it('aborts a server-streaming handler’s context when the client cancels, and reports CANCELLED', async () => {
    const before = recorder.summaries.length;
    const client = channel.client(ByteStreamClient);
    const stream = client.read({ resourceName: `team/blobs/${HASH}/5`, readOffset: 0, readLimit: 0 });
    stream.on('error', () => {});
    await new Promise((resolve) => stream.once('data', resolve));
    const context = recorder.contexts.at(-1) as RequestContext;
    assert.equal(context.instanceName, 'team');
    assert.equal(context.signal.aborted, false);
    stream.cancel();
    await recorder.readEnded;
    assert.ok(recorder.readAbortReason instanceof StatusError);
    assert.equal(recorder.readAbortReason.code, Code.CANCELLED);
    await recorder.waitForSummaries(before + 1);
    const summary = recorder.summaries.at(-1) as CallSummary;
    assert.equal(summary.method, 'Read');
    assert.equal(summary.code, Code.CANCELLED);
  });

  it('aborts a handler’s context with DEADLINE_EXCEEDED when the client’s deadline passes', async () => {
    const before = recorder.summaries.length;
    // The deadline as it reaches the server, without grpc-js's client timer: that timer would
    // cancel the call at the same moment and, under load, race the server's own deadline.
    const metadata = new Metadata();
    metadata.set('grpc-timeout', '300m');
    await rejectsWithCode(getCapabilities(channel, 'wait', metadata), Code.DEADLINE_EXCEEDED);
    await recorder.waitForSummaries(before + 1);
    const context = recorder.contexts.at(-1) as RequestContext;
    assert.equal(context.instanceName, 'wait');
    assert.equal((context.signal.reason as StatusError).code, Code.DEADLINE_EXCEEDED);
    assert.equal((recorder.summaries.at(-1) as CallSummary).code, Code.DEADLINE_EXCEEDED);
  });

  it('builds a client-streaming call’s context from the resource its first request names', async () => {
    const client = channel.client(ByteStreamClient);
    const response = await new Promise<WriteResponse>((resolve, reject) => {
      const stream = client.write((error: ServiceError | null, value?: WriteResponse) =>
        error ? reject(error) : resolve(value as WriteResponse),
      );
      const request = (resourceName: string, data: string): WriteRequest => ({
        resourceName,
        writeOffset: 0,
        finishWrite: false,
        data: Buffer.from(data),
      });
      stream.write(request(`a/b/uploads/u1/blobs/${HASH}/10`, 'hello'));
      stream.write(request('', 'world'));
      stream.end();
    });
    assert.equal(response.committedSize, 10, 'the handler saw every request, the first included');
    assert.equal((recorder.contexts.at(-1) as RequestContext).instanceName, 'a/b');
  });

  it('answers a resource name with a malformed instance with INVALID_ARGUMENT before the handler runs', async () => {
    const handled = recorder.contexts.length;
    const client = channel.client(ByteStreamClient);
    await rejectsWithCode(
      call((done) => client.queryWriteStatus({ resourceName: `x//uploads/u/blobs/${HASH}/1` }, done)),
      Code.INVALID_ARGUMENT,
    );
    assert.equal(recorder.contexts.length, handled);
  });
});

describe('handlers served without the edge', () => {
  it('refuse every call with UNAUTHENTICATED instead of letting callers in unchecked', async () => {
    const server = new Server();
    server.addService(
      CapabilitiesService,
      capabilitiesServer({ maxBatchTotalSizeBytes: 1, actionCacheUpdateEnabled: false, supportedCompressors: [] }),
    );
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (error, bound) =>
        error ? reject(error) : resolve(bound),
      ),
    );
    const channel = dial(`127.0.0.1:${port}`);
    try {
      await rejectsWithCode(getCapabilities(channel, ''), Code.UNAUTHENTICATED);
    } finally {
      channel.close();
      server.forceShutdown();
    }
  });
});

describe('a listener whose address is taken', () => {
  it('fails with a ListenError naming the address, and grpc-js prints nothing of its own', async () => {
    const first = createGrpcServer({ listeners: [{ address: '127.0.0.1:0' }] });
    const [bound] = await first.listen();
    const address = bound?.address as string;
    const printed = mock.method(console, 'error', () => {});
    try {
      const second = createGrpcServer({ listeners: [{ address }] });
      const error = await second.listen().then(
        () => assert.fail('the second bind succeeded'),
        (thrown: unknown) => thrown,
      );
      assert.ok(error instanceof ListenError, String(error));
      assert.equal(error.failure, 'in-use');
      assert.equal(error.address, address);
      assert.equal(error.message, `${address} is already in use`);
      assert.deepEqual(
        printed.mock.calls.map((call) => call.arguments.join(' ')),
        [],
        'no "E No address added out of total 1 resolved"',
      );
      await second.close();
    } finally {
      printed.mock.restore();
      await first.close();
    }
  });
});
