/**
 * HTTP/2 settings for bulk transfer. grpc-js leaves Node's default 64 KiB stream
 * and connection windows on its servers, which caps uploads at a fraction of what
 * the machine can hash (64 MiB uploads in 1 MiB messages on a 2-core VM, fresh
 * server each time: median ~260 MB/s with the defaults, ~440 MB/s with 16 MiB
 * windows). grpc-js offers no server option for this, so we set the initial
 * stream window through its settings object and widen each session's connection
 * window as the session is created. Both reach into grpc-js internals (checked against 1.14);
 * if they change, the server still works, only with the default windows.
 */

import type * as http2 from 'node:http2';
import type { Server } from '@grpc/grpc-js';

export const FLOW_CONTROL_WINDOW_BYTES = 16 * 1024 * 1024;

/** Channel options for our own clients (grpc-js supports this one on channels). */
export const CLIENT_CHANNEL_OPTIONS = {
  'grpc-node.flow_control_window': FLOW_CONTROL_WINDOW_BYTES,
  'grpc.max_receive_message_length': 64 * 1024 * 1024,
  'grpc.max_send_message_length': 64 * 1024 * 1024,
} as const;

interface ServerInternals {
  /** Options grpc-js passes to http2.createServer when a port is bound. */
  commonServerOptions?: http2.ServerOptions;
  /** Creates the http2 server of each bound port (and registers grpc-js's handlers on it). */
  createHttp2Server?: (...args: unknown[]) => http2.Http2Server;
  /** Open sessions; grpc-js only fills this when channelz is enabled (the default). */
  sessions?: Map<http2.ServerHttp2Session, unknown>;
}

/** Must be called before bindAsync. Returns false when grpc-js internals were not found. */
export function tuneHttp2Server(server: Server): boolean {
  const internals = server as unknown as ServerInternals;
  const options = internals.commonServerOptions;
  if (!options) return false;
  // The stream window is a SETTINGS value, sent to each client at connection start.
  options.settings = { ...options.settings, initialWindowSize: FLOW_CONTROL_WINDOW_BYTES };
  // The connection window can only be widened per session, once it exists.
  const widen = (session: http2.ServerHttp2Session) => {
    try {
      session.setLocalWindowSize(FLOW_CONTROL_WINDOW_BYTES);
    } catch {
      // The session may already be closing.
    }
  };
  const createHttp2Server = internals.createHttp2Server;
  if (typeof createHttp2Server === 'function') {
    // Works whether or not channelz is enabled, unlike watching `sessions`.
    internals.createHttp2Server = function (this: unknown, ...args: unknown[]) {
      const http2Server = createHttp2Server.apply(this, args);
      http2Server.on('session', widen);
      return http2Server;
    };
    return true;
  }
  const sessions = internals.sessions;
  if (!(sessions instanceof Map)) return false;
  const originalSet = sessions.set.bind(sessions);
  sessions.set = (session, info) => {
    widen(session);
    return originalSet(session, info);
  };
  return true;
}
