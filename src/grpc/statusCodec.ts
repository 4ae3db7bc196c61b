/**
 * Turns domain StatusErrors into wire statuses: a grpc-js ServiceError for failed
 * calls (with google.rpc.Status details in grpc-status-details-bin, as REAPI
 * clients expect for PreconditionFailure), and a google.rpc.Status message for
 * per-item results in batch responses and operations; and back again, for
 * Granary's own clients.
 */
import { Metadata, type ServiceError } from '@grpc/grpc-js';
import type { Any } from '../gen/google/protobuf/any.js';
import { BadRequest, PreconditionFailure, QuotaFailure, RetryInfo } from '../gen/google/rpc/error_details.js';
import { Status } from '../gen/google/rpc/status.js';
import { Code, type StatusDetails, StatusError, toStatusError } from '../util/status.js';
import { durationFromMs, msFromDuration } from '../util/time.js';

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
  if (error.details.quotaFailure) {
    details.push({
      typeUrl: `${TYPE_PREFIX}google.rpc.QuotaFailure`,
      value: Buffer.from(
        QuotaFailure.encode({
          violations: error.details.quotaFailure.map((v) => ({
            ...v,
            apiService: '',
            quotaMetric: '',
            quotaId: '',
            quotaDimensions: {},
            quotaValue: 0,
          })),
        }).finish(),
      ),
    });
  }
  if (error.details.retryDelayMs !== undefined) {
    details.push({
      typeUrl: `${TYPE_PREFIX}google.rpc.RetryInfo`,
      value: Buffer.from(RetryInfo.encode({ retryDelay: durationFromMs(error.details.retryDelayMs) }).finish()),
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

/** The details Granary understands in a google.rpc.Status (others are ignored). */
export function statusDetailsOf(status: Status): StatusDetails {
  const details: StatusDetails = {};
  for (const any of status.details) {
    try {
      switch (any.typeUrl.slice(any.typeUrl.lastIndexOf('/') + 1)) {
        case 'google.rpc.PreconditionFailure':
          details.preconditionFailure = PreconditionFailure.decode(any.value).violations;
          break;
        case 'google.rpc.BadRequest':
          details.badRequest = BadRequest.decode(any.value).fieldViolations.map(({ field, description }) => ({
            field,
            description,
          }));
          break;
        case 'google.rpc.QuotaFailure':
          details.quotaFailure = QuotaFailure.decode(any.value).violations.map(({ subject, description }) => ({
            subject,
            description,
          }));
          break;
        case 'google.rpc.RetryInfo': {
          const delay = RetryInfo.decode(any.value).retryDelay;
          if (delay) details.retryDelayMs = msFromDuration(delay);
          break;
        }
      }
    } catch {
      // A malformed detail is dropped; the code and message still stand.
    }
  }
  return details;
}

/**
 * The StatusError of a failed call as a client sees it: code, message, and the
 * details of grpc-status-details-bin when the server sent them.
 */
export function fromServiceError(error: ServiceError): StatusError {
  const code = (error.code as number | undefined) ?? Code.UNKNOWN;
  const message = error.details || error.message;
  const encoded = error.metadata?.get('grpc-status-details-bin')[0];
  if (!Buffer.isBuffer(encoded)) return new StatusError(code, message);
  try {
    return new StatusError(code, message, statusDetailsOf(Status.decode(encoded)));
  } catch {
    return new StatusError(code, message);
  }
}
