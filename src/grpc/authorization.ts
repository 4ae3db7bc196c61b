/**
 * Authorization at the gRPC edge: which Scope each method needs, and the hook
 * that decides whether a request's principal may call it on its instance. The
 * handlers call the hook once per call, right after the request context is
 * built (so the instance name is known); the default allows everything, which
 * is how Granary behaves until authentication is configured.
 */
import type { Requirement } from '../auth/access.js';
import type { RequestContext } from '../context/requestContext.js';

/** A method of a gRPC service, as in the call's path `/{service}/{method}`. */
export interface MethodName {
  readonly service: string;
  readonly method: string;
}

/**
 * What the authorizer is asked about: the method, and what it needs (a scope,
 * `authenticated` or `public`; undefined: not in the table, which an enforcing
 * policy treats as `admin`).
 */
export interface AuthorizationRequest extends MethodName {
  readonly scope: Requirement | undefined;
}

/**
 * Decides whether `context.principal` may make this call on `context.instanceName`;
 * throws a StatusError (PERMISSION_DENIED) when not.
 */
export type Authorizer = (context: RequestContext, request: AuthorizationRequest) => void | Promise<void>;

/** Allows every call: the behaviour without authentication. */
export const allowEverything: Authorizer = () => {};

const REAPI = 'build.bazel.remote.execution.v2';
const ASSET = 'build.bazel.remote.asset.v1';

/**
 * What each served method needs. Fetch is a read even though it may download
 * into the CAS: it only ever stores content that matches a checksum the caller
 * could not have forged. Listing every operation is an operator's view.
 * GetCapabilities answers any caller of the instance, for what that caller may
 * do there (REAPI: the capabilities "pertain to that instance"; Bazel reads
 * `update_enabled` and `exec_enabled` as "this account may"). Health checks are
 * public so load balancers need no credentials. A method missing here needs
 * `admin` once authentication is configured: add new services to this table.
 */
export const METHOD_SCOPES: Readonly<Record<string, Readonly<Record<string, Requirement>>>> = {
  [`${REAPI}.Capabilities`]: { GetCapabilities: 'authenticated' },
  [`${REAPI}.ContentAddressableStorage`]: {
    FindMissingBlobs: 'read',
    BatchReadBlobs: 'read',
    GetTree: 'read',
    SplitBlob: 'read',
    BatchUpdateBlobs: 'cas-write',
    SpliceBlob: 'cas-write',
  },
  'google.bytestream.ByteStream': { Read: 'read', Write: 'cas-write', QueryWriteStatus: 'cas-write' },
  [`${REAPI}.ActionCache`]: { GetActionResult: 'read', UpdateActionResult: 'ac-write' },
  [`${REAPI}.Execution`]: { Execute: 'execute', WaitExecution: 'execute' },
  'google.longrunning.Operations': {
    GetOperation: 'execute',
    WaitOperation: 'execute',
    CancelOperation: 'execute',
    DeleteOperation: 'execute',
    ListOperations: 'admin',
  },
  [`${ASSET}.Fetch`]: { FetchBlob: 'read', FetchDirectory: 'read' },
  [`${ASSET}.Push`]: { PushBlob: 'asset-write', PushDirectory: 'asset-write' },
  'google.devtools.remoteworkers.v1test2.Bots': { CreateBotSession: 'bots', UpdateBotSession: 'bots' },
  // Bazel's build events (--bes_backend): whoever may run builds on the farm may tell it about them.
  'google.devtools.build.v1.PublishBuildEvent': {
    PublishLifecycleEvent: 'execute',
    PublishBuildToolEventStream: 'execute',
  },
  'grpc.health.v1.Health': { Check: 'public', Watch: 'public', List: 'public' },
  'grpc.reflection.v1.ServerReflection': { ServerReflectionInfo: 'authenticated' },
  'grpc.reflection.v1alpha.ServerReflection': { ServerReflectionInfo: 'authenticated' },
};

/** Splits a grpc-js call path (`/pkg.Service/Method`) into service and method. */
export function methodOfPath(path: string): MethodName {
  const at = path.lastIndexOf('/');
  return { service: path.slice(path.startsWith('/') ? 1 : 0, Math.max(at, 0)), method: path.slice(at + 1) };
}

/** Paths remembered by authorizationRequestOf: far more than any server serves. */
const MAXIMUM_REMEMBERED_PATHS = 1024;
const requestsByPath = new Map<string, AuthorizationRequest>();

/**
 * The authorization request for a call path, with the scope from METHOD_SCOPES.
 * Asked two or three times per call, so each path's answer is made once (frozen).
 */
export function authorizationRequestOf(path: string): AuthorizationRequest {
  const known = requestsByPath.get(path);
  if (known) return known;
  const name = methodOfPath(path);
  const request: AuthorizationRequest = Object.freeze({ ...name, scope: METHOD_SCOPES[name.service]?.[name.method] });
  if (requestsByPath.size < MAXIMUM_REMEMBERED_PATHS) requestsByPath.set(path, request);
  return request;
}
