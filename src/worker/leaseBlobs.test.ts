import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import {
  CountingBlobStore,
  dir,
  file,
  type Harness,
  harnessDeps,
  newHarness,
  uploadAction,
  uploadTree,
} from '../../test/support/worker.js';
import { backgroundContext } from '../context/requestContext.js';
import { type Digest, digestOf } from '../digest/digest.js';
import { collectLeaseBlobs } from '../execution/leaseBlobs.js';
import { Action } from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import type { InlineBlob } from '../gen/granary/worker/v1/lease.js';
import { getBuffer } from '../storage/blobStore.js';
import { Code } from '../util/status.js';
import { type ExecuteActionDeps, executeAction } from './executeAction.js';

const context = backgroundContext();

describe('executeAction with blobs carried by the lease', () => {
  let h: Harness;
  before(async () => {
    h = await newHarness();
  });
  after(async () => {
    await h.close();
  });

  const deps = (extra: Partial<ExecuteActionDeps> = {}): ExecuteActionDeps =>
    harnessDeps(h, { sandbox: 'none', ...extra });

  /** An action copying its input, and the Action itself with the blobs a server would send along. */
  const prepare = async (text: string): Promise<{ action: Action; blobs: InlineBlob[] }> => {
    const inputRoot = await uploadTree(h.cas, { in: dir({ 'in.txt': file(text) }) });
    const actionDigest = await uploadAction(h.cas, {
      // A Command of its own per action (a seen one would come from the worker's memory).
      arguments: ['sh', '-c', 'cat in/in.txt in/in.txt > out.txt', text],
      outputPaths: ['out.txt'],
      inputRoot,
    });
    const action = Action.decode((await getBuffer(context, h.cas, actionDigest)) as Buffer);
    return { action, blobs: await collectLeaseBlobs(context, h.cas, action) };
  };

  test('runs the action without reading its Command, Directories or input file from the CAS', async () => {
    const { action, blobs } = await prepare('carried\n');
    const counting = new CountingBlobStore(h.cas);
    const response = await executeAction({ action, blobs }, deps({ cas: counting }));
    assert.equal(response.status?.code, Code.OK, response.status?.message);
    assert.equal(response.result?.exitCode, 0);
    assert.equal(counting.gets, 0, 'nothing fetched');
    const output = response.result?.outputFiles[0]?.digest as Digest;
    assert.equal((await getBuffer(context, h.cas, output))?.toString(), 'carried\ncarried\n');
  });

  test('refuses carried blobs whose bytes do not match their digests with DATA_LOSS, running nothing', async () => {
    for (const which of ['Command', 'input file']) {
      const text = `tampered ${which}\n`;
      const { action, blobs } = await prepare(text);
      const target = which === 'Command' ? action.commandDigest : digestOf(text);
      const tampered = blobs.map((blob) => {
        if (blob.digest?.hash !== target?.hash) return blob;
        const data = Buffer.from(blob.data);
        data[data.length - 1] = (data[data.length - 1] as number) ^ 1;
        return { digest: blob.digest, data };
      });
      const response = await executeAction({ action, blobs: tampered }, deps());
      assert.equal(response.status?.code, Code.DATA_LOSS, `${which}: ${response.status?.message}`);
      assert.equal(response.result, undefined);
    }
  });

  test('with deferCleanup the result comes back first and the handed-over removal empties the work directory', async () => {
    const { action, blobs } = await prepare('cleanup\n');
    const removals: Promise<void>[] = [];
    const response = await executeAction(
      { action, blobs },
      deps({ deferCleanup: (removal) => removals.push(removal) }),
    );
    assert.equal(response.status?.code, Code.OK, response.status?.message);
    assert.equal(removals.length, 1);
    await Promise.all(removals);
    assert.deepEqual(await readdir(h.workDirectory), []);
  });
});
