/**
 * Hands what the server's authentication interceptor established about a call
 * (the principal, and the server's authorizer) to the call's handler. grpc-js
 * gives interceptors and handlers different call objects; the request Metadata
 * object is the one thing both see, so the record is keyed by it.
 */
import type { Metadata } from '@grpc/grpc-js';
import type { Principal, Scope } from '../context/requestContext.js';
import { type Authorizer, allowEverything } from './authorization.js';

/** The caller of a call, and who decides what it may do. */
export interface CallSecurity {
  readonly principal: Principal;
  readonly authorizer: Authorizer;
}

/** The caller when no authentication is configured: anyone reaching the port may do anything. */
export const ANONYMOUS_PRINCIPAL: Principal = {
  name: 'anonymous',
  kind: 'anonymous',
  scopes: new Set<Scope>(['read', 'cas-write', 'ac-write', 'asset-write', 'execute', 'bots', 'admin']),
  instances: ['*'],
};

const UNAUTHENTICATED_SECURITY: CallSecurity = { principal: ANONYMOUS_PRINCIPAL, authorizer: allowEverything };

const securityByMetadata = new WeakMap<Metadata, CallSecurity>();

/** Called by the authentication interceptor before the call reaches its handler. */
export function recordCallSecurity(metadata: Metadata, security: CallSecurity): void {
  securityByMetadata.set(metadata, security);
}

/** The security of a call; anonymous and unrestricted when no interceptor recorded any. */
export function callSecurityOf(metadata: Metadata): CallSecurity {
  return securityByMetadata.get(metadata) ?? UNAUTHENTICATED_SECURITY;
}
