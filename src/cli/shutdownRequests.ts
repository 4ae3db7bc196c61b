/**
 * How the long-running commands (`granary serve`, `granary worker`) are asked to
 * stop. The first SIGINT or SIGTERM asks for a graceful stop; any later one asks to
 * stop at once. A process started by a parent through an IPC channel (the embedded
 * worker of `granary serve`) also listens to the parent: a `{ type: 'drain' }`
 * message counts as a first request, and the channel closing means the parent is
 * gone, however it ended (SIGKILL included), which is a request to stop at once.
 */
import { constants } from 'node:os';

export interface ShutdownHandlers {
  /** Stop taking work, finish or hand back what is held, then resolve the command. */
  graceful(reason: string): void;
  /** Stop now; `exitCode` is what the process should exit with. */
  immediate(reason: string, exitCode: number): void;
}

/** A message a parent sends its child over the IPC channel to ask for a graceful stop. */
export const DRAIN_MESSAGE = { type: 'drain' } as const;

/**
 * Installs the listeners; returns a function that removes them (so a command that
 * finished stops holding the process). `followParent` adds the IPC channel rules.
 */
export function onShutdownRequests(handlers: ShutdownHandlers, options: { followParent?: boolean } = {}): () => void {
  let requested = false;
  const graceful = (reason: string) => {
    if (requested) return;
    requested = true;
    handlers.graceful(reason);
  };
  const onSignal = (signal: NodeJS.Signals) => {
    if (!requested) graceful(signal);
    else handlers.immediate(`second ${signal}`, 128 + (constants.signals[signal] ?? 0));
  };
  const onMessage = (message: unknown) => {
    if ((message as { type?: unknown } | null)?.type === DRAIN_MESSAGE.type) graceful('asked by the parent process');
  };
  const onDisconnect = () => handlers.immediate('the parent process is gone', 1);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const channel = options.followParent ? process.channel : undefined;
  if (channel) {
    process.on('message', onMessage);
    process.on('disconnect', onDisconnect);
    // Listening must not keep the process alive once its work is done.
    channel.unref();
  } else if (options.followParent && process.connected === false) {
    // Started with a channel that closed before anyone listened (Node then drops
    // process.channel; `connected` is false rather than undefined): the parent is gone.
    setImmediate(onDisconnect);
  }
  return () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (channel) {
      process.off('message', onMessage);
      process.off('disconnect', onDisconnect);
    }
  };
}
