import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Code } from '../util/status.js';
import { unreachableReason } from './unreachable.js';

const unavailable = (details: string) => ({ code: Code.UNAVAILABLE, details });

describe('why a server could not be reached', () => {
  it("says what grpc-js's connection errors mean", () => {
    assert.equal(
      unreachableReason(
        unavailable(
          'No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:1. Resolution note: ',
        ),
      ),
      'connection refused',
    );
    assert.equal(
      unreachableReason(unavailable('Name resolution failed for target dns:farm.invalid:8980')),
      'the host name does not resolve',
    );
    assert.equal(
      unreachableReason(
        unavailable('No connection established. Last error: Error: connect EHOSTUNREACH 10.0.0.1:8980'),
      ),
      'the host is unreachable',
    );
    assert.equal(
      unreachableReason(unavailable('No connection established. Last error: Error: something new. Resolution note: ')),
      'no connection (something new)',
    );
  });

  it('is undefined when the server was reached and answered with an error', () => {
    assert.equal(unreachableReason({ code: Code.PERMISSION_DENIED, details: 'not a worker' }), undefined);
    assert.equal(unreachableReason(unavailable('the farm is shutting down')), undefined);
  });
});
