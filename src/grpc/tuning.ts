/**
 * HTTP/2 settings for bulk transfer. grpc-js leaves Node's default 64 KiB stream
 * and connection windows on its servers, which caps uploads at a fraction of what
 * the machine can hash. grpc-js offers no server option for this, so we set the
 * initial stream window through its settings object and widen each session's
 * connection window as it is created.
 */
import type { Server } from '@grpc/grpc-js';
import type * as http2 from 'node:http2';

export const FLOW_CONTROL_WINDOW_BYTES = 16 * 1024 * 1024;

/** Channel options for our own clients (grpc-js supports this one on channels). */
export const CLIENT_CHANNEL_OPTIONS = {
  'grpc-node.flow_control_window': FLOW_CONTROL_WINDOW_BYTES,
  'grpc.max_receive_message_length': 64 * 1024 * 1024,
  'grpc.max_send_message_length': 64 * 1024 * 1024,
} as const;

export function tuneHttp2Server(server: Server): void {
  const internals = server as unknown as {
    commonServerOptions?: http2.ServerOptions;
    sessions?: Map<http2.ServerHttp2Session, unknown>;
  };
  const options = internals.commonServerOptions;
  if (!options) return; // grpc-js changed its internals; run with defaults.
  options.settings = { ...options.settings, initialWindowSize: FLOW_CONTROL_WINDOW_BYTES };
  const sessions = internals.sessions;
  if (!(sessions instanceof Map)) return;
  const originalSet = sessions.set.bind(sessions);
  sessions.set = (session, info) => {
    try {
      session.setLocalWindowSize(FLOW_CONTROL_WINDOW_BYTES);
    } catch {
      // The session may already be closing.
    }
    return originalSet(session, info);
  };
}
