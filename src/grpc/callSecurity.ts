/**
 * Hands what the server's authentication interceptor established about a call
 * (the principal, and the server's authorizer) to the call's handler. grpc-js
 * gives interceptors and handlers different call objects; the request Metadata
 * object is the one thing both see, so the record is keyed by it.
 */
import type { Metadata } from '@grpc/grpc-js';
import type { Principal } from '../context/requestContext.js';
import { Code, StatusError } from '../util/status.js';
import type { Authorizer } from './authorization.js';

/** The caller of a call, and who decides what it may do. */
export interface CallSecurity {
  readonly principal: Principal;
  readonly authorizer: Authorizer;
}

const securityByMetadata = new WeakMap<Metadata, CallSecurity>();

/** Called by the authentication interceptor before the call reaches its handler. */
export function recordCallSecurity(metadata: Metadata, security: CallSecurity): void {
  securityByMetadata.set(metadata, security);
}

/**
 * The security of a call. A call no interceptor vouched for is refused: a handler
 * served without the authentication interceptor (a server not built by
 * createGrpcServer) must fail closed, not let everyone in.
 */
export function callSecurityOf(metadata: Metadata): CallSecurity {
  const security = securityByMetadata.get(metadata);
  if (!security) throw new StatusError(Code.UNAUTHENTICATED, 'the call was not authenticated by the server');
  return security;
}

/** The security recorded for a call, if any; for observers that report the caller. */
export function peekCallSecurity(metadata: Metadata): CallSecurity | undefined {
  return securityByMetadata.get(metadata);
}
