import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { assertCheckoutDestination } from './checkoutDestination.js';

describe('the destination of granary checkout', () => {
  let scratch: string;
  before(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'granary-checkout-'));
  });
  after(() => rm(scratch, { recursive: true, force: true }));

  it('may be a directory that does not exist yet, or an empty one', async () => {
    await assertCheckoutDestination(join(scratch, 'new'), 'new');
    await mkdir(join(scratch, 'empty'));
    await assertCheckoutDestination(join(scratch, 'empty'), 'empty');
  });

  it('may not be a directory holding anything, nor a file', async () => {
    await mkdir(join(scratch, 'used'));
    await writeFile(join(scratch, 'used', 'hello'), '');
    await assert.rejects(
      assertCheckoutDestination(join(scratch, 'used'), '/tmp/out'),
      /^Error: \/tmp\/out is not empty/,
    );
    await writeFile(join(scratch, 'file'), '');
    await assert.rejects(assertCheckoutDestination(join(scratch, 'file'), 'file'), /file is not a directory/);
  });
});
