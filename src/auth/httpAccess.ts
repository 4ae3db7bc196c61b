/**
 * The access policy at an HTTP port (metrics, web UI): the same callers and rules
 * as gRPC, read from an HTTP request (its Authorization header and, over mTLS, the
 * verified client certificate), with refusals as 401 (with a Bearer challenge)
 * and 403 instead of gRPC statuses.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { TLSSocket } from 'node:tls';
import type { Principal } from '../context/requestContext.js';
import { Code, StatusError } from '../util/status.js';
import type { Requirement } from './access.js';
import type { AccessPolicy } from './accessPolicy.js';
import type { PresentedCredentials } from './callerAuthenticator.js';

/** What the caller of an HTTP request presented. */
export function credentialsOfHttpRequest(request: IncomingMessage): PresentedCredentials {
  const socket = request.socket;
  const certificate = socket instanceof TLSSocket && socket.authorized ? socket.getPeerCertificate().raw : undefined;
  return { authorization: request.headersDistinct.authorization ?? [], verifiedClientCertificate: certificate };
}

/**
 * Authenticates and authorizes an HTTP request for `requirement` on an instance
 * (the default one unless the page is about another); throws a StatusError that
 * respondWithRefusal() turns into a response.
 */
export async function admitHttpRequest(
  policy: AccessPolicy,
  request: IncomingMessage,
  requirement: Requirement,
  instanceName = '',
): Promise<Principal> {
  const principal = await policy.authenticate(credentialsOfHttpRequest(request), requirement);
  policy.authorize(principal, requirement, instanceName);
  return principal;
}

/** The HTTP status for a refusal: 401 for UNAUTHENTICATED, 403 for PERMISSION_DENIED, 500 otherwise. */
export function httpStatusOfRefusal(error: unknown): number {
  if (!(error instanceof StatusError)) return 500;
  if (error.code === Code.UNAUTHENTICATED) return 401;
  if (error.code === Code.PERMISSION_DENIED) return 403;
  return 500;
}

/** Ends `response` with the refusal's status and message (a Bearer challenge with 401). */
export function respondWithRefusal(response: ServerResponse, error: unknown): void {
  const status = httpStatusOfRefusal(error);
  const headers: Record<string, string> = { 'content-type': 'text/plain; charset=utf-8' };
  if (status === 401) headers['www-authenticate'] = 'Bearer realm="granary"';
  response.writeHead(status, headers);
  response.end(`${status === 500 ? 'internal error' : (error as Error).message}\n`);
}
