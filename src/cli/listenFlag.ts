/** A gRPC listener that could not be bound, said in terms of the `--listen` flag that chose its address. */
import { ListenError } from '../grpc/server.js';

/**
 * The error to show for `error` when the command listened on `listen` (its --listen
 * value): a taken or forbidden address names the port and the flag; anything else
 * (another listener's failure, another error) is returned as it is.
 */
export function inTermsOfListenFlag(error: unknown, listen: string): unknown {
  if (!(error instanceof ListenError) || error.address !== listen) return error;
  const port = listen.slice(listen.lastIndexOf(':') + 1);
  if (error.failure === 'in-use') {
    return new Error(
      `cannot listen on ${listen}: port ${port} is already in use (another granary, or another program); ` +
        'choose another address with --listen HOST:PORT (--listen 127.0.0.1:0 takes any free port)',
    );
  }
  if (error.failure === 'permission') {
    return new Error(
      `cannot listen on ${listen}: no permission for port ${port} (ports below 1024 need root); ` +
        'choose another address with --listen HOST:PORT',
    );
  }
  return new Error(`${error.message} (the address of --listen)`);
}
