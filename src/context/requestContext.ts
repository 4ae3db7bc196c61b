/**
 * The request context: what every storage and scheduler call knows about the
 * request that caused it. The gRPC edge fills it once per call (deadline, the
 * client's cancellation, instance name, the authenticated caller, the client's
 * RequestMetadata); everything below only reads it. Work started on behalf of a
 * caller stops when `signal` aborts, so a cancelled client stops what it caused.
 * Background work (eviction, restarts, the embedded worker's own calls) uses
 * `backgroundContext()`.
 */

import { setMaxListeners } from 'node:events';
import { Code, StatusError } from '../util/status.js';

/** What an authenticated (or anonymous) caller may do; see SECURITY.md when it exists. */
export type Scope = 'read' | 'cas-write' | 'ac-write' | 'asset-write' | 'execute' | 'bots' | 'admin';

/** The caller, as established by the server's authenticator. */
export interface Principal {
  /** A name for logs and the UI: a token's name, a JWT subject or a certificate subject. */
  readonly name: string;
  /** How the caller was identified. */
  readonly kind: 'anonymous' | 'token' | 'jwt' | 'certificate' | 'internal';
  readonly scopes: ReadonlySet<Scope>;
  /** Instance-name patterns the scopes apply to; `*` matches every instance. */
  readonly instances: readonly string[];
}

/** The client's build.bazel.remote.execution.v2.RequestMetadata, as far as it was sent. */
export interface ClientMetadata {
  readonly toolName?: string;
  readonly toolVersion?: string;
  readonly actionId?: string;
  readonly toolInvocationId?: string;
  readonly correlatedInvocationsId?: string;
  readonly actionMnemonic?: string;
  readonly targetId?: string;
  readonly configurationId?: string;
}

export interface RequestContext {
  /** Aborts when the client cancels, the deadline passes or the server shuts down. */
  readonly signal: AbortSignal;
  /** Epoch milliseconds after which the caller no longer waits; undefined when unbounded. */
  readonly deadlineMs: number | undefined;
  /** The REAPI instance name of the request ('' for the default instance). */
  readonly instanceName: string;
  /** The caller; undefined only for work that no caller asked for. */
  readonly principal: Principal | undefined;
  readonly metadata: ClientMetadata;
  /**
   * The client's transport address as the server saw it (e.g. `ipv4:10.0.0.5:51234`),
   * when a connection caused the call: for logs, and to tell apart clients that send
   * no RequestMetadata when they share the farm.
   */
  readonly peer?: string;
}

/**
 * The signal of every context no client waits on. Each outgoing call made in
 * such a context listens on it (and stops listening when it ends), so a busy
 * client has many listeners at once; they never fire, so no limit applies
 * (Node's default of 10 printed a leak warning into the meta-build's output).
 */
const NEVER_ABORTED = new AbortController().signal;
setMaxListeners(0, NEVER_ABORTED);

/** The internal principal: the server acting on its own behalf (restarts, repair, eviction). */
export const INTERNAL_PRINCIPAL: Principal = {
  name: 'granary',
  kind: 'internal',
  scopes: new Set<Scope>(['read', 'cas-write', 'ac-write', 'asset-write', 'execute', 'bots', 'admin']),
  instances: ['*'],
};

/** A context for work no client is waiting on: never aborted, no deadline. */
export function backgroundContext(instanceName = ''): RequestContext {
  return { signal: NEVER_ABORTED, deadlineMs: undefined, instanceName, principal: INTERNAL_PRINCIPAL, metadata: {} };
}

/**
 * The same caller without its cancellation or deadline, for work that must
 * outlive the call that started it: an upload kept so that the client can resume
 * it from another call, or a download other callers have joined.
 */
export function detachedContext(context: RequestContext): RequestContext {
  return { ...context, signal: NEVER_ABORTED, deadlineMs: undefined };
}

/** The same request, for another instance name (e.g. a storage node serving several). */
export function withInstanceName(context: RequestContext, instanceName: string): RequestContext {
  return instanceName === context.instanceName ? context : { ...context, instanceName };
}

/**
 * A child context that also aborts after `timeoutMs` (or the parent's deadline,
 * whichever is first). Call `dispose()` when done so the timer does not linger.
 */
export function withTimeout(
  context: RequestContext,
  timeoutMs: number,
  now = Date.now(),
): { context: RequestContext; dispose(): void } {
  const deadlineMs = Math.min(context.deadlineMs ?? Number.POSITIVE_INFINITY, now + timeoutMs);
  const controller = new AbortController();
  const onParentAbort = () => controller.abort(context.signal.reason);
  if (context.signal.aborted) controller.abort(context.signal.reason);
  else context.signal.addEventListener('abort', onParentAbort, { once: true });
  const timer = setTimeout(() => controller.abort(new Error('deadline exceeded')), Math.max(0, deadlineMs - now));
  timer.unref?.();
  return {
    context: { ...context, signal: controller.signal, deadlineMs },
    dispose: () => {
      clearTimeout(timer);
      context.signal.removeEventListener('abort', onParentAbort);
    },
  };
}

/**
 * Throws the status a caller should see when its request was abandoned:
 * DEADLINE_EXCEEDED past the deadline, CANCELLED otherwise. Long loops call it
 * between steps so abandoned work stops early.
 */
export function throwIfAborted(context: RequestContext, now?: number): void {
  if (!context.signal.aborted) return;
  // The clock is read only for an aborted context: this runs on every call and in every loop.
  if (context.deadlineMs !== undefined && (now ?? Date.now()) >= context.deadlineMs) {
    throw new StatusError(Code.DEADLINE_EXCEEDED, 'deadline exceeded');
  }
  throw new StatusError(Code.CANCELLED, 'request cancelled');
}
