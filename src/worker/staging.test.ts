import assert from 'node:assert/strict';
import { lstat, readFile, readlink, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { dir, file, link, newHarness, putBlob, uploadTree } from '../../test/support/worker.js';
import { backgroundContext } from '../context/requestContext.js';
import { digestOf } from '../digest/digest.js';
import { Directory } from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import { Code, StatusError } from '../util/status.js';
import { stageInputRoot } from './staging.js';

/** The context of every storage call in these tests. */
const context = backgroundContext();

describe('stageInputRoot', () => {
  test('stages nested directories, executables, symlinks, empty files and duplicate files', async () => {
    const h = await newHarness();
    try {
      const rootDigest = await uploadTree(h.cas, {
        README: file('same bytes'),
        'copy.txt': file('same bytes'),
        empty: file(''),
        'empty-dir': dir(),
        bin: dir({ tool: file('#!/bin/sh\necho tool\n', true), 'tool-link': link('tool') }),
        a: dir({ b: dir({ c: dir({ 'deep.txt': file('deep') }) }) }),
        abs: link('/usr/bin/env'),
      });
      const destination = join(h.directory, 'root');
      const staged = await stageInputRoot(context, { cas: h.cas, cache: h.cache, rootDigest, destination });
      assert.equal(staged.fileCount, 5);
      assert.equal(await readFile(join(destination, 'a/b/c/deep.txt'), 'utf8'), 'deep');
      assert.ok((await stat(join(destination, 'empty-dir'))).isDirectory());
      assert.equal((await stat(join(destination, 'empty'))).size, 0);
      assert.equal((await stat(join(destination, 'README'))).mode & 0o7777, 0o444);
      assert.equal((await stat(join(destination, 'bin/tool'))).mode & 0o7777, 0o555);
      const readme = await stat(join(destination, 'README'));
      const copy = await stat(join(destination, 'copy.txt'));
      assert.equal(readme.ino, copy.ino, 'duplicates are links to one cached copy');
      assert.equal(await readlink(join(destination, 'bin/tool-link')), 'tool');
      assert.equal(await readlink(join(destination, 'abs')), '/usr/bin/env');
      assert.ok((await lstat(join(destination, 'abs'))).isSymbolicLink());
      assert.deepEqual(await staged.evictModifiedInputs(), []);
    } finally {
      await h.close();
    }
  });

  test('reports every missing input blob as FAILED_PRECONDITION with MISSING violations', async () => {
    const h = await newHarness();
    try {
      const rootDigest = await uploadTree(
        h.cas,
        { present: file('here'), gone: file('gone'), sub: dir({ alsoGone: file('also gone') }) },
        new Set(['gone', 'also gone']),
      );
      await assert.rejects(
        stageInputRoot(context, { cas: h.cas, cache: h.cache, rootDigest, destination: join(h.directory, 'root') }),
        (e: unknown) => {
          assert.ok(e instanceof StatusError);
          assert.equal(e.code, Code.FAILED_PRECONDITION);
          const subjects = (e.details.preconditionFailure ?? []).map((v) => `${v.type} ${v.subject}`).sort();
          const expected = ['gone', 'also gone']
            .map((t) => digestOf(t))
            .map((d) => `MISSING blobs/${d.hash}/${d.sizeBytes}`);
          assert.deepEqual(subjects, expected.sort());
          return true;
        },
      );
    } finally {
      await h.close();
    }
  });

  test('reports a missing input directory as MISSING', async () => {
    const h = await newHarness();
    try {
      const absent = digestOf('no such directory');
      const rootDigest = await putBlob(
        h.cas,
        Buffer.from(
          Directory.encode({
            files: [],
            directories: [{ name: 'sub', digest: absent }],
            symlinks: [],
            nodeProperties: undefined,
          }).finish(),
        ),
      );
      await assert.rejects(
        stageInputRoot(context, { cas: h.cas, cache: h.cache, rootDigest, destination: join(h.directory, 'root') }),
        (e: unknown) =>
          e instanceof StatusError &&
          e.code === Code.FAILED_PRECONDITION &&
          e.details.preconditionFailure?.[0]?.subject === `blobs/${absent.hash}/${absent.sizeBytes}`,
      );
    } finally {
      await h.close();
    }
  });

  test('rejects unsafe entry names with INVALID_ARGUMENT', async () => {
    const h = await newHarness();
    try {
      for (const name of ['..', '.', '', 'a/b']) {
        const content = await putBlob(h.cas, 'x');
        const rootDigest = await putBlob(
          h.cas,
          Buffer.from(
            Directory.encode({
              files: [{ name, digest: content, isExecutable: false, nodeProperties: undefined }],
              directories: [],
              symlinks: [],
              nodeProperties: undefined,
            }).finish(),
          ),
        );
        await assert.rejects(
          stageInputRoot(context, {
            cas: h.cas,
            cache: h.cache,
            rootDigest,
            destination: join(h.directory, `root-${name.length}`),
          }),
          (e: unknown) => e instanceof StatusError && e.code === Code.INVALID_ARGUMENT,
          `name "${name}"`,
        );
      }
    } finally {
      await h.close();
    }
  });

  test('an input modified through its hard link is evicted and staged intact next time', async () => {
    const h = await newHarness();
    try {
      const rootDigest = await uploadTree(h.cas, { 'data.txt': file('original'), 'other.txt': file('untouched') });
      const first = await stageInputRoot(context, {
        cas: h.cas,
        cache: h.cache,
        rootDigest,
        destination: join(h.directory, 'one'),
      });
      await writeFile(join(h.directory, 'one/data.txt'), 'poison!!'); // same size: caught by mtime
      const evicted = await first.evictModifiedInputs();
      assert.deepEqual(evicted, [digestOf('original')]);
      await stageInputRoot(context, { cas: h.cas, cache: h.cache, rootDigest, destination: join(h.directory, 'two') });
      assert.equal(await readFile(join(h.directory, 'two/data.txt'), 'utf8'), 'original');
      assert.equal(await readFile(join(h.directory, 'two/other.txt'), 'utf8'), 'untouched');
    } finally {
      await h.close();
    }
  });
});
