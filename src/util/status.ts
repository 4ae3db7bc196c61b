/**
 * Typed errors that carry a gRPC status code. Domain code throws these; only the
 * gRPC adapters turn them into wire statuses, so the same logic serves the CLI and
 * tests without depending on grpc-js.
 */

/** gRPC status codes (numerically identical to google.rpc.Code). */
export enum Code {
  OK = 0,
  CANCELLED = 1,
  UNKNOWN = 2,
  INVALID_ARGUMENT = 3,
  DEADLINE_EXCEEDED = 4,
  NOT_FOUND = 5,
  ALREADY_EXISTS = 6,
  PERMISSION_DENIED = 7,
  RESOURCE_EXHAUSTED = 8,
  FAILED_PRECONDITION = 9,
  ABORTED = 10,
  OUT_OF_RANGE = 11,
  UNIMPLEMENTED = 12,
  INTERNAL = 13,
  UNAVAILABLE = 14,
  DATA_LOSS = 15,
  UNAUTHENTICATED = 16,
}

/** One google.rpc.PreconditionFailure violation; REAPI uses type "MISSING" for absent blobs. */
export interface PreconditionViolation {
  type: string;
  subject: string;
  description: string;
}

/** One google.rpc.BadRequest field violation. */
export interface FieldViolation {
  field: string;
  description: string;
}

/** One google.rpc.QuotaFailure violation: whose quota ran out, and which. */
export interface QuotaViolation {
  subject: string;
  description: string;
}

export interface StatusDetails {
  preconditionFailure?: PreconditionViolation[];
  badRequest?: FieldViolation[];
  quotaFailure?: QuotaViolation[];
  /** google.rpc.RetryInfo: how long the client should wait before trying again. */
  retryDelayMs?: number;
}

export class StatusError extends Error {
  constructor(
    readonly code: Code,
    message: string,
    readonly details: StatusDetails = {},
  ) {
    super(message);
    this.name = `StatusError(${Code[code]})`;
  }

  /** Returns a copy whose message is prefixed with context, e.g. "shard 2: ...". */
  withContext(context: string): StatusError {
    return new StatusError(this.code, `${context}: ${this.message}`, this.details);
  }
}

export const invalidArgument = (message: string, badRequest?: FieldViolation[]) =>
  new StatusError(Code.INVALID_ARGUMENT, message, badRequest ? { badRequest } : {});
export const notFound = (message: string) => new StatusError(Code.NOT_FOUND, message);
export const failedPrecondition = (message: string, violations: PreconditionViolation[]) =>
  new StatusError(Code.FAILED_PRECONDITION, message, { preconditionFailure: violations });
export const resourceExhausted = (message: string) => new StatusError(Code.RESOURCE_EXHAUSTED, message);
/** A caller's quota ran out: RESOURCE_EXHAUSTED with QuotaFailure and RetryInfo details. */
export const quotaExceeded = (message: string, violation: QuotaViolation, retryDelayMs: number) =>
  new StatusError(Code.RESOURCE_EXHAUSTED, message, { quotaFailure: [violation], retryDelayMs });
export const outOfRange = (message: string) => new StatusError(Code.OUT_OF_RANGE, message);
export const unimplemented = (message: string) => new StatusError(Code.UNIMPLEMENTED, message);
export const internal = (message: string) => new StatusError(Code.INTERNAL, message);

/** Converts anything thrown into a StatusError, keeping codes of errors that already have one. */
export function toStatusError(error: unknown): StatusError {
  if (error instanceof StatusError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new StatusError(Code.INTERNAL, message);
}
