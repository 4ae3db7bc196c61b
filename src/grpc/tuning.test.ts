import assert from 'node:assert/strict';
import type * as http2 from 'node:http2';
import { describe, it } from 'node:test';
import { type ChannelOptions, Server, ServerCredentials } from '@grpc/grpc-js';
import { connect, unary } from '../client/connection.js';
import type { ServerCapabilities } from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import { CapabilitiesService } from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import { anonymousAuthenticator, authenticationInterceptor } from './authentication.js';
import { allowEverything } from './authorization.js';
import { capabilitiesServer } from './capabilitiesServer.js';
import { FLOW_CONTROL_WINDOW_BYTES, tuneHttp2Server } from './tuning.js';

/** Starts a server, makes one call, and returns the server session's local windows. */
async function windowsAfterOneCall(options: ChannelOptions, tune: boolean) {
  // The handlers refuse calls nobody authenticated; let everyone in, as createGrpcServer does by default.
  const server = new Server({
    ...options,
    interceptors: [authenticationInterceptor(anonymousAuthenticator, allowEverything)],
  });
  const tuned = tune ? tuneHttp2Server(server) : false;
  server.addService(
    CapabilitiesService,
    capabilitiesServer({ maxBatchTotalSizeBytes: 1024, actionCacheUpdateEnabled: false, supportedCompressors: [] }),
  );
  const sessions: http2.ServerHttp2Session[] = [];
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (error, bound) =>
      error ? reject(error) : resolve(bound),
    ),
  );
  const internals = server as unknown as { http2Servers: Map<http2.Http2Server, unknown> };
  for (const http2Server of internals.http2Servers.keys()) http2Server.on('session', (s) => sessions.push(s));
  const connection = connect(`grpc://127.0.0.1:${port}`);
  try {
    await unary<ServerCapabilities>((done) => connection.capabilities.getCapabilities({ instanceName: '' }, done));
    const session = sessions[0];
    assert.ok(session, 'no server session seen');
    return {
      tuned,
      streamWindow: session.localSettings.initialWindowSize,
      connectionWindow: session.state.effectiveLocalWindowSize,
    };
  } finally {
    connection.close();
    server.forceShutdown();
  }
}

describe('tuneHttp2Server', () => {
  it('widens the stream and connection windows of server sessions', async () => {
    const windows = await windowsAfterOneCall({}, true);
    assert.deepEqual(windows, {
      tuned: true,
      streamWindow: FLOW_CONTROL_WINDOW_BYTES,
      connectionWindow: FLOW_CONTROL_WINDOW_BYTES,
    });
  });

  it('also works with channelz disabled', async () => {
    const windows = await windowsAfterOneCall({ 'grpc.enable_channelz': 0 }, true);
    assert.deepEqual(windows, {
      tuned: true,
      streamWindow: FLOW_CONTROL_WINDOW_BYTES,
      connectionWindow: FLOW_CONTROL_WINDOW_BYTES,
    });
  });

  it('is needed: grpc-js servers default to 64 KiB windows', async () => {
    const windows = await windowsAfterOneCall({}, false);
    assert.equal(windows.streamWindow, 65535);
    assert.ok(windows.connectionWindow !== undefined && windows.connectionWindow < FLOW_CONTROL_WINDOW_BYTES);
  });
});
