import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { rejectsWithCode } from '../../test/support/status.js';
import { backgroundContext } from '../context/requestContext.js';
import { digestOf, formatDigest } from '../digest/digest.js';
import { Tree } from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import { putBuffer } from '../storage/blobStore.js';
import { MemoryBlobStore } from '../storage/memoryBlobStore.js';
import { Code } from '../util/status.js';
import { MalformedTreeError } from './directory.js';
import { treeFromEntries } from './editor.js';
import { filesOfTree, readTreeMessage, treeMessageOf } from './treeMessage.js';

const context = backgroundContext();

describe('Tree messages', () => {
  test('hold the root and every distinct directory below it once, and list their files once', async () => {
    const cas = new MemoryBlobStore();
    const root = await treeFromEntries(context, cas, [
      { path: 'a/file', kind: 'file', data: 'same' },
      { path: 'b/file', kind: 'file', data: 'same' },
      { path: 'c/d/other', kind: 'file', data: 'other' },
      { path: 'top', kind: 'file', data: 'top' },
    ]);
    const tree = await treeMessageOf(context, cas, root);
    assert.deepEqual(
      tree.root?.directories.map((d) => d.name),
      ['a', 'b', 'c'],
    );
    // "a" and "b" are the same directory: a, c and c/d.
    assert.equal(tree.children.length, 3);
    assert.deepEqual(
      filesOfTree(tree).map(formatDigest).sort(),
      [digestOf('same'), digestOf('other'), digestOf('top')].map(formatDigest).sort(),
    );
  });

  test('cannot be built when a directory is missing', async () => {
    const full = new MemoryBlobStore();
    const root = await treeFromEntries(context, full, [{ path: 'sub/file', kind: 'file', data: 'x' }]);
    const error = await rejectsWithCode(treeMessageOf(context, new MemoryBlobStore(), root), Code.NOT_FOUND);
    assert.match(error.message, /\(the root\)/);
  });

  test('read back from the CAS: undefined when absent, MalformedTreeError when not a Tree', async () => {
    const cas = new MemoryBlobStore();
    const root = await treeFromEntries(context, cas, [{ path: 'file', kind: 'file', data: 'x' }]);
    const data = Buffer.from(Tree.encode(await treeMessageOf(context, cas, root)).finish());
    await putBuffer(context, cas, digestOf(data), data);
    assert.equal((await readTreeMessage(context, cas, digestOf(data)))?.root?.files[0]?.name, 'file');
    assert.equal(await readTreeMessage(context, cas, digestOf('absent')), undefined);
    const garbage = Buffer.from([0xff, 0xff, 0xff]);
    await putBuffer(context, cas, digestOf(garbage), garbage);
    const error = await rejectsWithCode(readTreeMessage(context, cas, digestOf(garbage)), Code.INVALID_ARGUMENT);
    assert.ok(error instanceof MalformedTreeError);
  });
});
