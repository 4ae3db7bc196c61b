/**
 * Reads the client's `build.bazel.remote.execution.v2.requestmetadata-bin` header
 * (a serialized RequestMetadata) into the request context's ClientMetadata.
 *
 * A malformed header is ignored (empty metadata), not answered with
 * INVALID_ARGUMENT: the specification makes the header optional and purely
 * informative (servers "may" use it for logging and grouping), so nothing the
 * server does depends on it being well formed, and refusing a build over it
 * would punish the client for data we only use to share the farm fairly.
 */
import type { Metadata } from '@grpc/grpc-js';
import type { ClientMetadata } from '../context/requestContext.js';
import { RequestMetadata } from '../gen/build/bazel/remote/execution/v2/remote_execution.js';

/** The header name REAPI defines for RequestMetadata (binary, hence the -bin suffix). */
export const REQUEST_METADATA_HEADER = 'build.bazel.remote.execution.v2.requestmetadata-bin';

const NO_METADATA: ClientMetadata = Object.freeze({});

/** The first RequestMetadata header of a call, decoded; empty when absent or malformed. */
export function parseRequestMetadata(metadata: Metadata): ClientMetadata {
  const raw = metadata.get(REQUEST_METADATA_HEADER)[0];
  if (!(raw instanceof Buffer)) return NO_METADATA;
  let decoded: RequestMetadata;
  try {
    decoded = RequestMetadata.decode(raw);
  } catch {
    return NO_METADATA;
  }
  const fields: Record<string, string> = {};
  const keep = (name: keyof ClientMetadata, value: string | undefined) => {
    if (value) fields[name] = value;
  };
  keep('toolName', decoded.toolDetails?.toolName);
  keep('toolVersion', decoded.toolDetails?.toolVersion);
  keep('actionId', decoded.actionId);
  keep('toolInvocationId', decoded.toolInvocationId);
  keep('correlatedInvocationsId', decoded.correlatedInvocationsId);
  keep('actionMnemonic', decoded.actionMnemonic);
  keep('targetId', decoded.targetId);
  keep('configurationId', decoded.configurationId);
  return fields as ClientMetadata;
}
