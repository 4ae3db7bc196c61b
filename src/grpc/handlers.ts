/**
 * Helpers that wrap async domain calls as grpc-js handlers, so every adapter maps
 * thrown StatusErrors to wire statuses the same way and never crashes the server.
 */
import type { ServerUnaryCall, ServerWritableStream, sendUnaryData } from '@grpc/grpc-js';
import { toServiceError } from './statusCodec.js';

export function unary<Req, Res>(fn: (request: Req, call: ServerUnaryCall<Req, Res>) => Promise<Res>) {
  return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => {
    fn(call.request, call).then(
      (response) => callback(null, response),
      (error: unknown) => callback(toServiceError(error)),
    );
  };
}

export function serverStreaming<Req, Res>(fn: (request: Req, call: ServerWritableStream<Req, Res>) => Promise<void>) {
  return (call: ServerWritableStream<Req, Res>) => {
    fn(call.request, call).then(
      () => call.end(),
      (error: unknown) => {
        // grpc-js sends the status of an 'error' event when the stream ends; destroy()
        // would skip that, leaving the client waiting for a status forever.
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
