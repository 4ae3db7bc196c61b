/**
 * The access policy of a server: how callers are identified and what they may
 * do, as one object that every port (gRPC and HTTP) consults. Without any
 * authentication configured the policy is open: every caller is anonymous and
 * allowed everything, which is how Granary behaves on loopback out of the box.
 */
import type { Principal, Scope } from '../context/requestContext.js';
import { ALL_SCOPES, authorize, type Requirement } from './access.js';
import type { CallerAuthenticator, PresentedCredentials } from './callerAuthenticator.js';

export interface AccessPolicy {
  /** False for the open policy (no authentication configured). */
  readonly enforced: boolean;
  /** Who is calling; throws UNAUTHENTICATED when the credentials are missing or wrong. */
  authenticate(credentials: PresentedCredentials, requirement: Requirement): Promise<Principal>;
  /** Throws UNAUTHENTICATED or PERMISSION_DENIED unless `principal` meets `requirement` on the instance. */
  authorize(principal: Principal | undefined, requirement: Requirement, instanceName: string): void;
}

/** The caller when no authentication is configured: anyone reaching the port may do anything. */
export const UNRESTRICTED_ANONYMOUS: Principal = {
  name: 'anonymous',
  kind: 'anonymous',
  scopes: new Set<Scope>(ALL_SCOPES),
  instances: ['*'],
};

/** No authentication: everyone is UNRESTRICTED_ANONYMOUS. */
export const OPEN_ACCESS: AccessPolicy = {
  enforced: false,
  authenticate: async () => UNRESTRICTED_ANONYMOUS,
  authorize: () => {},
};

/** The policy of a configured authenticator: its callers, checked against their scopes and instances. */
export function enforcedAccess(authenticator: CallerAuthenticator): AccessPolicy {
  return {
    enforced: true,
    authenticate: (credentials, requirement) => authenticator.authenticate(credentials, requirement),
    authorize,
  };
}
