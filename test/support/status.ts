/** Status assertions shared by unit and end-to-end tests. */
import assert from 'node:assert/strict';
import type { ServiceError } from '@grpc/grpc-js';
import { fromServiceError } from '../../src/client/connection.js';
import { Code, StatusError } from '../../src/util/status.js';

/** Awaits a promise that must fail with the given status code; returns the error. */
export async function rejectsWithCode(promise: Promise<unknown>, code: Code, message?: string): Promise<StatusError> {
  try {
    await promise;
  } catch (thrown) {
    const error = thrown instanceof StatusError ? thrown : fromServiceError(thrown as ServiceError);
    assert.equal(
      Code[error.code],
      Code[code],
      `${message ? `${message}: ` : ''}expected ${Code[code]}, got ${Code[error.code]} (${error.message})`,
    );
    return error;
  }
  assert.fail(`${message ? `${message}: ` : ''}expected ${Code[code]}, but the call succeeded`);
}
