/**
 * Property-based tests of staging hostile input trees: Directory messages as any
 * client may upload them (unsafe and repeated names, entries out of order,
 * symlinks pointing anywhere, deep nesting) are staged exactly as described or
 * refused with INVALID_ARGUMENT before anything is written, and nothing is ever
 * created outside the input root.
 */
import assert from 'node:assert/strict';
import { lstat, mkdir, readdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { acceptsOrRefuses, acceptsOrRefusesAsync, fuzzParameters, isStatus } from '../../test/support/fuzz.js';
import { newHarness, putBlob } from '../../test/support/worker.js';
import { backgroundContext } from '../context/requestContext.js';
import { type Digest, digestKey, digestOf } from '../digest/digest.js';
import { Directory } from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import { layoutTree } from '../tree/materialize.js';
import { Code } from '../util/status.js';
import { stageInputRoot } from './staging.js';

const context = backgroundContext();

type RawEntry =
  | { kind: 'file'; name: string; data: string; executable: boolean }
  | { kind: 'symlink'; name: string; target: string }
  | { kind: 'dir'; name: string; entries: RawEntry[] };

const entryName = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom('a', 'b', 'B', 'é', 'a b', '-rf', '...', '.hidden') },
  { weight: 2, arbitrary: fc.constantFrom('', '.', '..', 'a/b', '/', '/etc', 'x\0y', 'n'.repeat(256)) },
  { weight: 2, arbitrary: fc.string({ maxLength: 6 }) },
);
const symlinkTarget = fc.oneof(
  fc.constantFrom('../../../outside', '/etc/passwd', '..', '.', 'a', 'a/../../..', '', 'x\0y'),
  fc.string({ maxLength: 8 }),
);
const { tree } = fc.letrec<{ tree: RawEntry[]; entry: RawEntry }>((tie) => ({
  tree: fc.array(tie('entry'), { maxLength: 4 }),
  entry: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.record({
      kind: fc.constant('file' as const),
      name: entryName,
      data: fc.string({ maxLength: 4 }),
      executable: fc.boolean(),
    }),
    fc.record({ kind: fc.constant('symlink' as const), name: entryName, target: symlinkTarget }),
    fc.record({ kind: fc.constant('dir' as const), name: entryName, entries: tie('tree') }),
  ),
}));

/**
 * Depths of directory chains: mostly shallow, some around where a path outgrows
 * the host's limit (laying out thousands of levels takes a while, so fewer of those).
 */
const chainDepth = fc.oneof(
  { weight: 7, arbitrary: fc.integer({ min: 1, max: 200 }) },
  { weight: 1, arbitrary: fc.integer({ min: 1300, max: 2100 }) },
);

/** Uploads entries in the order given (unsorted, repeated names and all); returns the root's digest. */
async function upload(cas: Parameters<typeof putBlob>[0], entries: RawEntry[]): Promise<Digest> {
  const directory: Directory = { files: [], directories: [], symlinks: [], nodeProperties: undefined };
  for (const entry of entries) {
    if (entry.kind === 'file') {
      const digest = await putBlob(cas, entry.data);
      directory.files.push({ name: entry.name, digest, isExecutable: entry.executable, nodeProperties: undefined });
    } else if (entry.kind === 'symlink') {
      directory.symlinks.push({ name: entry.name, target: entry.target, nodeProperties: undefined });
    } else {
      directory.directories.push({ name: entry.name, digest: await upload(cas, entry.entries) });
    }
  }
  return putBlob(cas, Buffer.from(Directory.encode(directory).finish()));
}

/** Whether every name of the tree can be created on a Linux host, once per directory, and every symlink target is one. */
function stageable(entries: RawEntry[]): boolean {
  const names = new Set<string>();
  for (const entry of entries) {
    const { name } = entry;
    if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) return false;
    if (Buffer.byteLength(name) > 255 || names.has(name)) return false;
    names.add(name);
    if (entry.kind === 'symlink' && (entry.target === '' || entry.target.includes('\0'))) return false;
    if (entry.kind === 'dir' && !stageable(entry.entries)) return false;
  }
  return true;
}

/** Checks that `path` on disk holds exactly `entries` (symlinks not followed). */
async function assertStaged(path: string, entries: RawEntry[]): Promise<void> {
  assert.deepEqual((await readdir(path)).sort(), entries.map((entry) => entry.name).sort());
  for (const entry of entries) {
    const at = join(path, entry.name);
    const status = await lstat(at);
    if (entry.kind === 'file') {
      assert.ok(status.isFile(), at);
      assert.equal(await readFile(at, 'utf8'), entry.data);
      assert.equal((status.mode & 0o111) !== 0, entry.executable, at);
    } else if (entry.kind === 'symlink') {
      assert.ok(status.isSymbolicLink(), at);
      assert.equal(await readlink(at), entry.target);
    } else {
      assert.ok(status.isDirectory(), at);
      await assertStaged(at, entry.entries);
    }
  }
}

describe('staging hostile input trees (property-based)', () => {
  it('stages a tree exactly as described, or refuses it with INVALID_ARGUMENT before writing anything', async () => {
    // One CAS and local cache for every run (they are content-addressed); each run stages below a directory of its own.
    const h = await newHarness();
    let run = 0;
    try {
      await fc.assert(
        fc.asyncProperty(tree, async (entries) => {
          const rootDigest = await upload(h.cas, entries);
          const runDirectory = join(h.directory, `run-${run++}`);
          await mkdir(runDirectory);
          const destination = join(runDirectory, 'root');
          const staged = await acceptsOrRefusesAsync(
            () => stageInputRoot(context, { cas: h.cas, cache: h.cache, rootDigest, destination }),
            isStatus(Code.INVALID_ARGUMENT),
          );
          assert.equal(staged !== undefined, stageable(entries));
          // Nothing beside the input root, whatever its symlinks say.
          assert.deepEqual(await readdir(runDirectory), staged ? ['root'] : []);
          if (staged) await assertStaged(destination, entries);
        }),
        { numRuns: 200 },
      );
    } finally {
      await h.close();
    }
  });

  it('lays out a tree of any depth inside the destination, or refuses it with INVALID_ARGUMENT', () => {
    fc.assert(
      fc.property(chainDepth, fc.integer({ min: 1, max: 3 }), (depth, nameLength) => {
        // A chain of `depth` directories, each holding the next and one file. Layout
        // only looks directories up by digest, so the digests need not be real.
        const directories = new Map<string, Directory>();
        const file = { name: 'f', digest: digestOf('x'), isExecutable: false, nodeProperties: undefined };
        const digestAt = (level: number): Digest => ({ hash: String(level).padStart(64, '0'), sizeBytes: level });
        for (let level = 0; level < depth; level++) {
          directories.set(digestKey(digestAt(level)), {
            files: [file],
            directories: level === 0 ? [] : [{ name: 'd'.repeat(nameLength), digest: digestAt(level - 1) }],
            symlinks: [],
            nodeProperties: undefined,
          });
        }
        const destination = '/work/input-root';
        const layout = acceptsOrRefuses(
          () => layoutTree(directories, digestAt(depth - 1), destination),
          isStatus(Code.INVALID_ARGUMENT),
        );
        // The deepest path is the file of the innermost directory.
        const deepestPath = destination.length + (depth - 1) * (nameLength + 1) + '/f'.length;
        assert.equal(layout !== undefined, deepestPath < 4096, `depth ${depth}, names of ${nameLength}`);
        for (const placed of layout?.files ?? []) assert.ok(placed.path.startsWith(`${destination}/`));
      }),
      // Far deeper than any path can be: this once overflowed the stack (RangeError) instead of refusing.
      { ...fuzzParameters, numRuns: 200, examples: [[30_000, 1]] },
    );
  });
});
