/**
 * Builds the RequestContext of one gRPC call: the one place where grpc-js's
 * cancellation, deadline and metadata become the plain values storage and the
 * scheduler read. The handlers in handlers.ts call it once per call.
 */
import type { Metadata } from '@grpc/grpc-js';
import type { ClientMetadata, Principal, RequestContext } from '../context/requestContext.js';
import { Code, StatusError } from '../util/status.js';
import { parseRequestMetadata } from './requestMetadata.js';

/** What of a grpc-js server call the context needs (every kind of call has it). */
export interface ContextSource {
  readonly metadata: Metadata;
  readonly cancelled: boolean;
  getDeadline(): Date | number;
  /** The client's address (`HOST:PORT`, or `unknown`). */
  getPeer(): string;
  on(event: 'cancelled', listener: () => void): unknown;
  off(event: 'cancelled', listener: () => void): unknown;
}

/** setTimeout's longest delay; later deadlines rely on grpc-js cancelling the call. */
const LONGEST_TIMER_MS = 2 ** 31 - 1;
/**
 * A client gives up at its deadline and resets the stream a moment before the
 * server's copy of the deadline (taken when the headers arrived) passes; a
 * cancellation this close to the deadline is the deadline.
 */
const DEADLINE_TOLERANCE_MS = 250;

/** Whether a call ending now ended because of its deadline. */
export function isPastDeadline(deadline: Date | number, nowMs = Date.now()): boolean {
  const deadlineMs = deadlineMsOf(deadline);
  return deadlineMs !== undefined && nowMs + DEADLINE_TOLERANCE_MS >= deadlineMs;
}

/** A call's context, and the release of its timer and listener once the handler is done. */
export interface CallContext {
  context: RequestContext;
  /** Throws the call's CANCELLED or DEADLINE_EXCEEDED status if it ended; reads no signal the handler did not. */
  throwIfEnded(): void;
  dispose(): void;
}

/** grpc-js reports "no deadline" as Infinity and a deadline as a Date or epoch milliseconds. */
export function deadlineMsOf(deadline: Date | number): number | undefined {
  const deadlineMs = deadline instanceof Date ? deadline.getTime() : deadline;
  return Number.isFinite(deadlineMs) ? deadlineMs : undefined;
}

const deadlineExceeded = () => new StatusError(Code.DEADLINE_EXCEEDED, 'deadline exceeded');

/**
 * The context of a call: its signal aborts (reason: a CANCELLED StatusError) when
 * the client cancels or the call is otherwise torn down, and (reason:
 * DEADLINE_EXCEEDED) when the client's deadline passes.
 *
 * The signal, its listener and its deadline timer are made when a handler first
 * reads `signal`, and the RequestMetadata header is decoded when one first reads
 * `metadata`: a cache hit reads neither, and making them cost it a fair share of
 * its CPU. `throwIfEnded` answers from the call itself when no signal was made.
 */
export function contextForCall(
  call: ContextSource,
  instanceName: string,
  principal: Principal,
  now = Date.now(),
): CallContext {
  const deadlineMs = deadlineMsOf(call.getDeadline());
  // `now` may be earlier than the clock (tests); the timer counts from it.
  const clockLagMs = deadlineMs === undefined ? 0 : Date.now() - now;
  const endReason = () =>
    isPastDeadline(call.getDeadline())
      ? deadlineExceeded()
      : new StatusError(Code.CANCELLED, 'the client cancelled the call');
  let controller: AbortController | undefined;
  let timer: NodeJS.Timeout | undefined;
  let listening = false;
  let disposed = false;
  const onCancelled = () => controller?.abort(endReason());
  const signal = (): AbortSignal => {
    if (controller) return controller.signal;
    controller = new AbortController();
    // A context read after its handler finished no longer follows the call.
    if (disposed) return controller.signal;
    if (call.cancelled) {
      onCancelled();
      return controller.signal;
    }
    call.on('cancelled', onCancelled);
    listening = true;
    const delayMs =
      deadlineMs === undefined ? Number.POSITIVE_INFINITY : Math.max(0, deadlineMs - Date.now() + clockLagMs);
    if (delayMs <= LONGEST_TIMER_MS) {
      const aborting = controller;
      timer = setTimeout(() => aborting.abort(deadlineExceeded()), delayMs);
      timer.unref();
    }
    return controller.signal;
  };
  let clientMetadata: ClientMetadata | undefined;
  const context: RequestContext = {
    get signal() {
      return signal();
    },
    deadlineMs,
    instanceName,
    principal,
    get metadata() {
      clientMetadata ??= parseRequestMetadata(call.metadata);
      return clientMetadata;
    },
    peer: call.getPeer(),
  };
  return {
    context,
    throwIfEnded: () => {
      if (controller) {
        if (controller.signal.aborted) throw controller.signal.reason;
        return;
      }
      if (call.cancelled) throw endReason();
      if (deadlineMs !== undefined && Date.now() - clockLagMs >= deadlineMs) throw deadlineExceeded();
    },
    dispose: () => {
      disposed = true;
      clearTimeout(timer);
      if (listening) call.off('cancelled', onCancelled);
    },
  };
}
