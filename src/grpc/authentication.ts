/**
 * Authentication at the gRPC edge: a grpc-js server interceptor that asks the
 * server's authenticator who is calling (from the call's metadata and its
 * connection's TLS state) before the call reaches its handler, answers
 * UNAUTHENTICATED (or whatever status the authenticator throws) when it cannot
 * tell, and records the principal for the handler to put in the request context.
 * Token, JWT and client-certificate authenticators plug in here.
 */
import type { PeerCertificate } from 'node:tls';
import { type Metadata, ServerInterceptingCall, type ServerInterceptor, status as Status } from '@grpc/grpc-js';
import { UNRESTRICTED_ANONYMOUS } from '../auth/accessPolicy.js';
import type { Principal } from '../context/requestContext.js';
import { type AuthorizationRequest, type Authorizer, authorizationRequestOf } from './authorization.js';
import { recordCallSecurity } from './callSecurity.js';
import { toServiceError } from './statusCodec.js';

/** What an authenticator may look at: the call's headers, its peer and its connection's TLS state. */
export interface AuthenticationRequest extends AuthorizationRequest {
  readonly metadata: Metadata;
  /** The peer's address, `HOST:PORT` (or `unknown`). */
  readonly peer: string;
  /** Set on TLS connections: `ssl`, and the verified client certificate under mTLS. */
  readonly transportSecurityType: string | undefined;
  readonly peerCertificate: PeerCertificate | undefined;
}

/**
 * Establishes who is calling; throws a StatusError (UNAUTHENTICATED for missing
 * or bad credentials) to refuse the call before its handler runs.
 */
export type Authenticator = (request: AuthenticationRequest) => Principal | Promise<Principal>;

/** The caller when no authentication is configured: anyone reaching the port may do anything. */
export const ANONYMOUS_PRINCIPAL: Principal = UNRESTRICTED_ANONYMOUS;

/** Lets every caller in as ANONYMOUS_PRINCIPAL: today's behaviour. */
export const anonymousAuthenticator: Authenticator = () => ANONYMOUS_PRINCIPAL;

/** The interceptor that authenticates every call and hands the principal and `authorizer` to its handler. */
export function authenticationInterceptor(authenticator: Authenticator, authorizer: Authorizer): ServerInterceptor {
  return (methodDefinition, nextCall) => {
    const call: ServerInterceptingCall = new ServerInterceptingCall(nextCall, {
      start: (next) =>
        next({
          onReceiveMetadata: (metadata, passOn) => {
            const authContext = nextCall.getAuthContext();
            const request: AuthenticationRequest = {
              ...authorizationRequestOf(methodDefinition.path),
              metadata,
              peer: nextCall.getPeer(),
              transportSecurityType: authContext.transportSecurityType,
              peerCertificate: authContext.sslPeerCertificate,
            };
            const admit = (principal: Principal) => {
              recordCallSecurity(metadata, { principal, authorizer });
              passOn(metadata);
            };
            const refuse = (error: unknown) => {
              const status = toServiceError(error);
              call.sendStatus({
                code: status.code ?? Status.UNAUTHENTICATED,
                details: status.details ?? 'unauthenticated',
                metadata: status.metadata ?? null,
              });
            };
            let answer: Principal | Promise<Principal>;
            try {
              answer = authenticator(request);
            } catch (error) {
              // Refused after the interceptor has started, as an asynchronous authenticator's refusal is.
              queueMicrotask(() => refuse(error));
              return;
            }
            // A synchronous answer (anonymous access, a cached token) admits the call without a detour through the microtask queue.
            if (isPromiseLike(answer)) Promise.resolve(answer).then(admit, refuse);
            else admit(answer);
          },
        }),
    });
    return call;
  };
}

function isPromiseLike<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}
