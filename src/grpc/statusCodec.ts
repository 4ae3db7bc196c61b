/**
 * Turns domain StatusErrors into wire statuses: a grpc-js ServiceError for failed
 * calls (with google.rpc.Status details in grpc-status-details-bin, as REAPI
 * clients expect for PreconditionFailure), and a google.rpc.Status message for
 * per-item results in batch responses and operations.
 */
import { Metadata, type ServiceError } from '@grpc/grpc-js';
import type { Any } from '../gen/google/protobuf/any.js';
import { BadRequest, PreconditionFailure } from '../gen/google/rpc/error_details.js';
import { Status } from '../gen/google/rpc/status.js';
import { Code, type StatusError, toStatusError } from '../util/status.js';

const TYPE_PREFIX = 'type.googleapis.com/';

export function toRpcStatus(error: StatusError): Status {
  const details: Any[] = [];
  if (error.details.preconditionFailure) {
    details.push({
      typeUrl: `${TYPE_PREFIX}google.rpc.PreconditionFailure`,
      value: Buffer.from(PreconditionFailure.encode({ violations: error.details.preconditionFailure }).finish()),
    });
  }
  if (error.details.badRequest) {
    details.push({
      typeUrl: `${TYPE_PREFIX}google.rpc.BadRequest`,
      value: Buffer.from(
        BadRequest.encode({
          fieldViolations: error.details.badRequest.map((v) => ({ ...v, reason: '', localizedMessage: undefined })),
        }).finish(),
      ),
    });
  }
  return { code: error.code, message: error.message, details };
}

export const OK_STATUS: Status = { code: Code.OK, message: '', details: [] };

/** Converts anything thrown by domain code into an error grpc-js sends as a status. */
export function toServiceError(thrown: unknown): Partial<ServiceError> {
  const error = toStatusError(thrown);
  const metadata = new Metadata();
  const status = toRpcStatus(error);
  if (status.details.length > 0) metadata.set('grpc-status-details-bin', Buffer.from(Status.encode(status).finish()));
  return { code: error.code as number, details: error.message, metadata };
}
