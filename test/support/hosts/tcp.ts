/**
 * Plain TCP from the test process to a test host: wait until something listens, and make a
 * one-shot request (connect, optionally send, read until the server closes). Enough to
 * probe load balancers and trivial backends without a protocol library.
 */
import { connect } from 'node:net';

/**
 * Connects once, sends `payload` (if any), and resolves with everything received until the
 * server closes. The client does not close its side first: a load balancer may take an early
 * close for an aborted connection and never reach a server (HAProxy logs it as "CC").
 */
export function tcpRequest(address: string, port: number, payload = '', timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: address, port });
    let received = '';
    socket.setTimeout(timeoutMs, () =>
      socket.destroy(new Error(`${address}:${port}: no answer within ${timeoutMs} ms`)),
    );
    socket.on('connect', () => {
      if (payload !== '') socket.write(payload);
    });
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString();
    });
    socket.on('error', reject);
    socket.on('close', (hadError) => {
      if (!hadError) resolve(received);
    });
  });
}

/** Resolves once a TCP connection to address:port succeeds; retries every 100 ms for up to `timeoutMs`. */
export async function waitForTcp(address: string, port: number, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: Error | undefined;
  while (Date.now() < deadline) {
    try {
      await new Promise<void>((resolve, reject) => {
        const socket = connect({ host: address, port });
        socket.setTimeout(2_000, () => socket.destroy(new Error('connect timed out')));
        socket.on('connect', () => {
          socket.destroy();
          resolve();
        });
        socket.on('error', reject);
      });
      return;
    } catch (error) {
      lastError = error as Error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  throw new Error(`${address}:${port} did not accept a connection within ${timeoutMs} ms: ${lastError?.message}`);
}
