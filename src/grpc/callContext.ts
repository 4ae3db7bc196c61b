/**
 * Builds the RequestContext of one gRPC call: the one place where grpc-js's
 * cancellation, deadline and metadata become the plain values storage and the
 * scheduler read. The handlers in handlers.ts call it once per call.
 */
import type { Metadata } from '@grpc/grpc-js';
import type { Principal, RequestContext } from '../context/requestContext.js';
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
  dispose(): void;
}

/** grpc-js reports "no deadline" as Infinity and a deadline as a Date or epoch milliseconds. */
export function deadlineMsOf(deadline: Date | number): number | undefined {
  const deadlineMs = deadline instanceof Date ? deadline.getTime() : deadline;
  return Number.isFinite(deadlineMs) ? deadlineMs : undefined;
}

/**
 * The context of a call: its signal aborts (reason: a CANCELLED StatusError) when
 * the client cancels or the call is otherwise torn down, and (reason:
 * DEADLINE_EXCEEDED) when the client's deadline passes.
 */
export function contextForCall(
  call: ContextSource,
  instanceName: string,
  principal: Principal,
  now = Date.now(),
): CallContext {
  const controller = new AbortController();
  const deadlineMs = deadlineMsOf(call.getDeadline());
  const onCancelled = () => {
    controller.abort(
      isPastDeadline(call.getDeadline())
        ? new StatusError(Code.DEADLINE_EXCEEDED, 'deadline exceeded')
        : new StatusError(Code.CANCELLED, 'the client cancelled the call'),
    );
  };
  let timer: NodeJS.Timeout | undefined;
  if (call.cancelled) onCancelled();
  else {
    call.on('cancelled', onCancelled);
    const delayMs = deadlineMs === undefined ? Number.POSITIVE_INFINITY : Math.max(0, deadlineMs - now);
    if (delayMs <= LONGEST_TIMER_MS) {
      timer = setTimeout(() => controller.abort(new StatusError(Code.DEADLINE_EXCEEDED, 'deadline exceeded')), delayMs);
      timer.unref();
    }
  }
  const context: RequestContext = {
    signal: controller.signal,
    deadlineMs,
    instanceName,
    principal,
    metadata: parseRequestMetadata(call.metadata),
    peer: call.getPeer(),
  };
  return {
    context,
    dispose: () => {
      clearTimeout(timer);
      call.off('cancelled', onCancelled);
    },
  };
}
