/**
 * What a caller may do: the scopes, instance-name patterns and the one check
 * every transport uses (gRPC methods and, later, HTTP pages). A Principal holds
 * scopes and the instance patterns they apply to; a call needs one Requirement
 * (a scope, "any credentials" or nothing at all) on one instance. Transport
 * neutral: it knows principals and instance names, never headers or sockets.
 */
import type { Principal, Scope } from '../context/requestContext.js';
import { Code, StatusError } from '../util/status.js';

/** Every scope, in the order SECURITY.md lists them. */
export const ALL_SCOPES: readonly Scope[] = [
  'read',
  'cas-write',
  'ac-write',
  'asset-write',
  'execute',
  'bots',
  'admin',
];

/**
 * What a call needs: a scope on its instance; `authenticated`: any principal whose
 * instance patterns cover the instance (GetCapabilities, which answers per caller);
 * `public`: nothing, not even credentials (health checks).
 */
export type Requirement = Scope | 'authenticated' | 'public';

export function isScope(text: string): text is Scope {
  return (ALL_SCOPES as readonly string[]).includes(text);
}

/**
 * Whether an instance-name pattern matches an instance name: `*` stands for any
 * run of characters (slashes included), everything else is literal. `*` matches
 * every instance, the default instance "" included; `ci/*` matches `ci/linux`.
 */
export function instancePatternMatches(pattern: string, instanceName: string): boolean {
  const parts = pattern.split('*');
  if (parts.length === 1) return pattern === instanceName;
  const first = parts[0] as string;
  const last = parts[parts.length - 1] as string;
  if (instanceName.length < first.length + last.length) return false;
  if (!instanceName.startsWith(first) || !instanceName.endsWith(last)) return false;
  let position = first.length;
  const end = instanceName.length - last.length;
  for (const middle of parts.slice(1, -1)) {
    const found = instanceName.indexOf(middle, position);
    if (found < 0 || found + middle.length > end) return false;
    position = found + middle.length;
  }
  return true;
}

/** Whether one of the principal's instance patterns matches the instance. */
export function coversInstance(principal: Principal, instanceName: string): boolean {
  return principal.instances.some((pattern) => instancePatternMatches(pattern, instanceName));
}

/** Whether the principal holds `scope` on the instance. */
export function mayUse(principal: Principal, scope: Scope, instanceName: string): boolean {
  return principal.scopes.has(scope) && coversInstance(principal, instanceName);
}

function describeInstance(instanceName: string): string {
  return instanceName === '' ? 'the default instance' : `instance "${instanceName}"`;
}

/**
 * Throws unless `principal` meets `requirement` on the instance. A caller without
 * credentials is told UNAUTHENTICATED (credentials would help); an identified
 * caller PERMISSION_DENIED, naming what it lacks.
 */
export function authorize(principal: Principal | undefined, requirement: Requirement, instanceName: string): void {
  if (requirement === 'public') return;
  if (principal) {
    const allowed =
      requirement === 'authenticated'
        ? coversInstance(principal, instanceName)
        : mayUse(principal, requirement, instanceName);
    if (allowed) return;
  }
  const needs = requirement === 'authenticated' ? 'access to' : `the "${requirement}" scope on`;
  if (!principal || principal.kind === 'anonymous') {
    throw new StatusError(
      Code.UNAUTHENTICATED,
      `this call needs credentials with ${needs} ${describeInstance(instanceName)}`,
    );
  }
  throw new StatusError(
    Code.PERMISSION_DENIED,
    `${principal.kind} "${principal.name}" does not have ${needs} ${describeInstance(instanceName)}`,
  );
}
