/**
 * How a refusal of the access policy reads at an HTTP port (metrics, web UI):
 * the same callers and rules as gRPC, with 401 and 403 instead of gRPC statuses.
 */
import { Code, StatusError } from '../util/status.js';

/** The HTTP status for a refusal: 401 for UNAUTHENTICATED, 403 for PERMISSION_DENIED, 500 otherwise. */
export function httpStatusOfRefusal(error: unknown): number {
  if (!(error instanceof StatusError)) return 500;
  if (error.code === Code.UNAUTHENTICATED) return 401;
  if (error.code === Code.PERMISSION_DENIED) return 403;
  return 500;
}
