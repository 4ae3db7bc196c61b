/**
 * Where each request carries its REAPI instance name. Most messages have an
 * `instance_name` field; ByteStream names the instance in its resource names and
 * the Bots service in its parent and session names. Operation names
 * (`operations/{id}`) are global: WaitExecution and the Operations service run
 * in the instance the operation was submitted to (looked up by the execution
 * adapter), or the default instance's context when there is no such operation.
 * The gRPC edge reads it once, into the request context, before authorization
 * and the domain services.
 */
import { instanceNameOfReadResource, instanceNameOfWriteResource } from '../cas/resourceName.js';

/**
 * Picks the instance name out of a request; throws INVALID_ARGUMENT when the
 * request names it badly. May look it up (an operation's instance is where it was
 * submitted).
 */
export type InstanceNameOf<Req> = (request: Req) => string | Promise<string>;

/** Requests with an `instance_name` field (CAS, action cache, execution, capabilities, remote asset). */
export function instanceNameField(request: unknown): string {
  const value = (request as { instanceName?: unknown } | undefined)?.instanceName;
  return typeof value === 'string' ? value : '';
}

/** ByteStream Read: `{instance}/blobs/...` or `{instance}/compressed-blobs/...`. */
export function readResourceInstance(request: { resourceName: string }): string {
  return instanceNameOfReadResource(request.resourceName);
}

/**
 * ByteStream Write (its first message) and QueryWriteStatus: `{instance}/uploads/{uuid}/...`.
 * An empty name is left to the adapter, which reports what is missing.
 */
export function writeResourceInstance(request: { resourceName: string }): string {
  return request.resourceName === '' ? '' : instanceNameOfWriteResource(request.resourceName);
}

/** Bots CreateBotSession: the parent is the instance name. */
export function botParentInstance(request: { parent: string }): string {
  return request.parent;
}

const BOT_SESSION_SEPARATOR = 'botSessions/';

/** Bots UpdateBotSession: session names are `{parent}/botSessions/{id}` (see BotSessions.create). */
export function botSessionInstance(request: { name: string }): string {
  const at = request.name.lastIndexOf(`/${BOT_SESSION_SEPARATOR}`);
  return at < 0 ? '' : request.name.slice(0, at);
}
