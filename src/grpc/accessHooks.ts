/**
 * The server's access policy as the gRPC edge's two hooks: the authenticator
 * reads the `authorization` metadata and the verified mTLS client certificate,
 * the authorizer checks the method's requirement (METHOD_SCOPES; `admin` for
 * methods not listed) on the call's instance.
 */
import type { AccessPolicy } from '../auth/accessPolicy.js';
import type { Authenticator } from './authentication.js';
import type { Authorizer } from './authorization.js';

export function accessHooks(policy: AccessPolicy): { authenticator: Authenticator; authorizer: Authorizer } {
  return {
    authenticator: (request) =>
      policy.authenticate(
        {
          authorization: request.metadata.get('authorization').map(String),
          verifiedClientCertificate: request.peerCertificate?.raw,
        },
        request.scope ?? 'admin',
      ),
    authorizer: (context, request) =>
      policy.authorize(context.principal, request.scope ?? 'admin', context.instanceName),
  };
}
