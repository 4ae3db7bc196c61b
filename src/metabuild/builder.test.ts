import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { after, describe, it } from 'node:test';
import { removeProjects, writeProject } from '../../test/support/project.js';
import type { Connection } from '../client/connection.js';
import { backgroundContext } from '../context/requestContext.js';
import { Directory } from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import { getBuffer } from '../storage/blobStore.js';
import { MemoryBlobStore } from '../storage/memoryBlobStore.js';
import { Code } from '../util/status.js';
import { Builder, type ElementEvent } from './builder.js';
import { loadProject } from './project/index.js';

after(removeProjects);

/**
 * The action cache and GetTree of a farm, in memory: lookups find nothing,
 * and each artifact record waits until the test lets it through (or fails it).
 */
function fakeFarm(cas: MemoryBlobStore) {
  const held: Array<{ release: (error?: Error) => void }> = [];
  let recordsDone = 0;
  const connection = {
    instanceName: '',
    actionCache: {
      getActionResult: (_request: unknown, done: (error: unknown) => void) =>
        setImmediate(() => done(Object.assign(new Error('not found'), { code: Code.NOT_FOUND, details: 'not found' }))),
      updateActionResult: (request: { actionResult: unknown }, done: (error: unknown, response?: unknown) => void) => {
        held.push({
          release: (error) => {
            if (!error) recordsDone++;
            done(
              error ? Object.assign(error, { code: Code.UNAVAILABLE, details: error.message }) : null,
              request.actionResult,
            );
          },
        });
      },
    },
    cas: {
      getTree: (request: { rootDigest: { hash: string; sizeBytes: number } }) => {
        const stream = new EventEmitter();
        setImmediate(async () => {
          const data = await getBuffer(backgroundContext(), cas, request.rootDigest);
          stream.emit('data', { directories: [Directory.decode(data ?? Buffer.alloc(0))] });
          stream.emit('end');
        });
        return stream;
      },
    },
  } as unknown as Connection;
  return {
    connection,
    held,
    recordsDone: () => recordsDone,
    async nextRecord() {
      while (held.length === 0) await new Promise((resolve) => setImmediate(resolve));
      return held.shift()!;
    },
  };
}

const PROJECT = {
  'project.conf': 'name: p\nmin-version: 2.0\nelement-path: elements\n',
  'files/usr/bin/tool': 'tool',
  'elements/base.bst': 'kind: import\nsources:\n- kind: local\n  path: files\n',
  'elements/image.bst': 'kind: compose\nbuild-depends: [base.bst]\n',
};

describe('Builder', { timeout: 60_000 }, () => {
  it('starts a dependant as soon as its dependency has an artifact, before that artifact is recorded', async () => {
    const cas = new MemoryBlobStore();
    const farm = fakeFarm(cas);
    const directory = await writeProject(PROJECT);
    const project = await loadProject(directory, { maxJobs: 1, targets: ['image.bst'] });
    const events: ElementEvent[] = [];
    const builder = new Builder({
      project,
      connection: farm.connection,
      cas,
      cacheDirectory: directory,
      platform: [],
      onEvent: (event) => events.push(event),
    });
    const building = builder.build(['image.bst']);
    const baseRecord = await farm.nextRecord();
    // base.bst's record is held; image.bst has been assembled from its artifact meanwhile.
    const imageRecord = await farm.nextRecord();
    assert.ok(events.some((e) => e.element === 'image.bst' && e.state === 'running'));
    assert.ok(!events.some((e) => e.state === 'built'), 'nothing is built before it is recorded');
    let finished = false;
    void building.then(() => {
      finished = true;
    });
    imageRecord.release();
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(finished, false, 'the build waits for every record');
    baseRecord.release();
    assert.deepEqual(await building, { failed: [], built: ['image.bst', 'base.bst'] });
    assert.equal(farm.recordsDone(), 2);
  });

  it('fails an element whose artifact cannot be recorded', async () => {
    const cas = new MemoryBlobStore();
    const farm = fakeFarm(cas);
    const directory = await writeProject(PROJECT);
    const project = await loadProject(directory, { maxJobs: 1, targets: ['base.bst'] });
    const builder = new Builder({ project, connection: farm.connection, cas, cacheDirectory: directory, platform: [] });
    const building = builder.build(['base.bst']);
    (await farm.nextRecord()).release(new Error('action cache unavailable'));
    assert.deepEqual(await building, { failed: ['base.bst'], built: [] });
  });
});
