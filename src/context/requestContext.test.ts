import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cancelOnAbort } from '../client/outgoingContext.js';
import { backgroundContext } from './requestContext.js';

describe('backgroundContext', () => {
  it('lets any number of outgoing calls watch it at once without a listener-leak warning', async () => {
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on('warning', onWarning);
    try {
      const stops = Array.from({ length: 50 }, () => cancelOnAbort(backgroundContext(), { cancel: () => undefined }));
      // Warnings are emitted on the next tick.
      await new Promise((resolve) => setImmediate(resolve));
      for (const stop of stops) stop();
      assert.deepEqual(
        warnings.filter((w) => w.name === 'MaxListenersExceededWarning').map((w) => w.message),
        [],
      );
    } finally {
      process.off('warning', onWarning);
    }
  });
});
