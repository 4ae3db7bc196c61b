import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { rejectsWithCode } from '../../test/support/status.js';
import { backgroundContext, type RequestContext } from '../context/requestContext.js';
import { type Digest, digestKey, digestOf, formatDigest, SHA256 } from '../digest/digest.js';
import { Directory } from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import { putBuffer } from '../storage/blobStore.js';
import { MemoryBlobStore } from '../storage/memoryBlobStore.js';
import { Code } from '../util/status.js';
import { EMPTY_DIRECTORY_DIGEST, MalformedTreeError } from './directory.js';
import { treeFromEntries } from './editor.js';
import { loadTree, treeContents, walkTree } from './walk.js';

const context = backgroundContext();

/** Stores a Directory message as given (no canonical checks), returning its digest. */
async function putDirectory(cas: MemoryBlobStore, directory: Partial<Directory>): Promise<Digest> {
  const data = Buffer.from(
    Directory.encode({ files: [], directories: [], symlinks: [], nodeProperties: undefined, ...directory }).finish(),
  );
  const digest = digestOf(data);
  await putBuffer(context, cas, digest, data);
  return digest;
}

async function walked(cas: MemoryBlobStore, roots: Digest[]): Promise<Array<[string, boolean]>> {
  const out: Array<[string, boolean]> = [];
  for await (const entry of walkTree(context, cas, roots)) out.push([entry.path, entry.directory !== undefined]);
  return out;
}

describe('walkTree', () => {
  test('visits directories breadth first, in listing order, each shared directory once', async () => {
    const cas = new MemoryBlobStore();
    // "a/x" and "b" hold the same (empty) content, and "a/y" equals "c/y".
    const root = await treeFromEntries(context, cas, [
      { path: 'a/x', kind: 'directory' },
      { path: 'a/y/file', kind: 'file', data: 'same' },
      { path: 'b', kind: 'directory' },
      { path: 'c/y/file', kind: 'file', data: 'same' },
      { path: 'c/z/deeper', kind: 'directory' },
    ]);
    assert.deepEqual(await walked(cas, [root]), [
      ['', true],
      ['a', true],
      ['b', true],
      ['c', true],
      ['a/y', true],
      ['c/z', true],
    ]);
  });

  test('yields an absent directory without its subtree and goes on with the rest', async () => {
    const cas = new MemoryBlobStore();
    const absent = digestOf('never stored');
    const present = await putDirectory(cas, {});
    const root = await putDirectory(cas, {
      directories: [
        { name: 'gone', digest: absent },
        { name: 'here', digest: present },
      ],
    });
    const other = digestOf('another absent root');
    assert.deepEqual(await walked(cas, [root, other, root]), [
      ['', true],
      ['', false],
      ['gone', false],
      ['here', true],
    ]);
  });

  test('reads the empty directory without asking the store', async () => {
    const cas = new MemoryBlobStore();
    const entries = [];
    for await (const entry of walkTree(context, cas, [EMPTY_DIRECTORY_DIGEST], { readBlob: async () => undefined })) {
      entries.push(entry);
    }
    assert.equal(entries.length, 1);
    assert.deepEqual(entries[0]?.directory?.files, []);
  });

  test('reads through readBlob when given, e.g. a local cache', async () => {
    const cas = new MemoryBlobStore();
    const root = await treeFromEntries(context, cas, [{ path: 'sub/file', kind: 'file', data: 'x' }]);
    const read: string[] = [];
    const { directories, missing } = await loadTree(context, new MemoryBlobStore(), [root], {
      readBlob: async (digest) => {
        read.push(digestKey(digest));
        const blob = await cas.get(context, digest);
        if (!blob) return undefined;
        const chunks: Buffer[] = [];
        for await (const chunk of blob.read()) chunks.push(chunk);
        return Buffer.concat(chunks);
      },
    });
    assert.equal(directories.size, 2);
    assert.deepEqual(missing, []);
    assert.equal(read.length, 2);
  });

  test('throws MalformedTreeError (INVALID_ARGUMENT) for a blob that is not a Directory', async () => {
    const cas = new MemoryBlobStore();
    const garbage = Buffer.from([0xff, 0xff, 0xff]);
    await putBuffer(context, cas, digestOf(garbage), garbage);
    const error = await rejectsWithCode(loadTree(context, cas, [digestOf(garbage)]), Code.INVALID_ARGUMENT);
    assert.ok(error instanceof MalformedTreeError);
    assert.match(error.message, /is not a Directory message/);
  });

  test('checks digests and names only when asked to', async () => {
    const cas = new MemoryBlobStore();
    const badDigest = await putDirectory(cas, {
      files: [{ name: 'f', digest: { hash: 'XYZ', sizeBytes: 1 }, isExecutable: false, nodeProperties: undefined }],
    });
    const unsafe = await putDirectory(cas, { symlinks: [{ name: '..', target: 'x', nodeProperties: undefined }] });
    const twice = await putDirectory(cas, {
      files: [
        { name: 'f', digest: digestOf(''), isExecutable: false, nodeProperties: undefined },
        { name: 'f', digest: digestOf(''), isExecutable: true, nodeProperties: undefined },
      ],
    });
    for (const root of [badDigest, unsafe, twice])
      assert.equal((await loadTree(context, cas, [root])).directories.size, 1);
    await rejectsWithCode(loadTree(context, cas, [badDigest], { digestFunction: SHA256 }), Code.INVALID_ARGUMENT);
    await rejectsWithCode(loadTree(context, cas, [unsafe], { safeNames: true }), Code.INVALID_ARGUMENT);
    const error = await rejectsWithCode(loadTree(context, cas, [twice], { safeNames: true }), Code.INVALID_ARGUMENT);
    assert.match(error.message, /"f" more than once/);
  });

  test('stops with CANCELLED when the request is cancelled', async () => {
    const cas = new MemoryBlobStore();
    const root = await treeFromEntries(context, cas, [{ path: 'a/b', kind: 'directory' }]);
    const controller = new AbortController();
    controller.abort();
    const cancelled: RequestContext = { ...context, signal: controller.signal };
    await rejectsWithCode(loadTree(cancelled, cas, [root]), Code.CANCELLED);
  });
});

describe('treeContents', () => {
  test('lists every directory and file of several trees once, and the directories that are missing', async () => {
    const cas = new MemoryBlobStore();
    const one = await treeFromEntries(context, cas, [
      { path: 'a/file', kind: 'file', data: 'shared' },
      { path: 'top', kind: 'file', data: 'top' },
    ]);
    const two = await treeFromEntries(context, cas, [{ path: 'b/file', kind: 'file', data: 'shared' }]);
    const absent = digestOf('absent directory');
    const withAbsent = await putDirectory(cas, { directories: [{ name: 'lost', digest: absent }] });
    const contents = await treeContents(context, cas, [one, two, withAbsent]);
    // The roots, "a" (which "b" equals) and the lost one.
    assert.equal(contents.directories.length, 5);
    assert.deepEqual(
      contents.files.map(formatDigest).sort(),
      [digestOf('shared'), digestOf('top')].map(formatDigest).sort(),
    );
    assert.deepEqual(contents.missingDirectories, [{ digest: absent, path: 'lost' }]);
  });
});
