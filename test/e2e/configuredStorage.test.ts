/**
 * `granary serve --config` with a storage graph from a file: the CAS sharded over
 * two disks by weight (behind verification), and Bazel 4.2.3 (Debian
 * bazel-bootstrap) using the farm as its remote cache: a rebuild after
 * `clean --expunge` is all remote cache hits, and both disks hold part of the blobs.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { bazel, processSummary, remoteCacheFlags, spawnsOtherThan } from '../support/bazel.js';
import { bazelWorkspace } from '../support/bazelWorkspace.js';
import { requireCommand } from '../support/commands.js';
import { useFarm } from '../support/farm.js';

const skip = requireCommand('bazel');

/** Files under a disk store's blobs/ directory. */
function blobCount(diskDirectory: string): number {
  let count = 0;
  for (const shard of readdirSync(join(diskDirectory, 'blobs'))) {
    count += readdirSync(join(diskDirectory, 'blobs', shard)).length;
  }
  return count;
}

describe('granary serve --config with a CAS sharded over two disks', { skip, timeout: 15 * 60_000 }, () => {
  const disks = mkdtempSync(join(tmpdir(), 'granary-sharded-'));
  const configFile = join(disks, 'granary.yaml');
  writeFileSync(
    configFile,
    [
      'maxSize: 2GiB',
      'storage:',
      '  cas:',
      '    verifying:',
      '      backend:',
      '        sharding:',
      '          shards:',
      `            - { weight: 1, backend: { disk: { path: ${join(disks, 'one')}, maxSizeBytes: 1GiB } } }`,
      `            - { weight: 1, backend: { disk: { path: ${join(disks, 'two')}, maxSizeBytes: 1GiB } } }`,
      `  actionCache: { disk: { path: ${join(disks, 'ac')}, maxSizeBytes: 64MiB } }`,
    ].join('\n'),
  );
  const farm = useFarm({ name: 'configured-storage', embeddedWorkers: 0, serveFlags: ['--config', configFile] });
  // Registered after the farm's own hook, so the server has stopped before its disks go.
  after(() => rmSync(disks, { recursive: true, force: true }));

  test('Bazel 4.2.3 fills the sharded cache and a rebuild after clean --expunge is all remote cache hits', () => {
    const workspace = bazelWorkspace(4, farm.path('workspace'));
    const outputRoot = farm.path('root');
    const flags = remoteCacheFlags(farm.url);
    const first = bazel(workspace, outputRoot, 'build', [...flags, '//...']);
    assert.equal(first.status, 0, first.output);
    assert.equal(bazel(workspace, outputRoot, 'clean', ['--expunge']).status, 0);
    const second = bazel(workspace, outputRoot, 'build', [...flags, '//...']);
    assert.equal(second.status, 0, second.output);
    const summary = processSummary(second.output);
    assert.deepEqual(spawnsOtherThan(summary, ['remote cache hit']), [], second.output);
    assert.ok((summary['remote cache hit'] ?? 0) >= 7, second.output);
    const [one, two] = [blobCount(join(disks, 'one')), blobCount(join(disks, 'two'))];
    assert.ok(one > 0 && two > 0, `both disks hold blobs (${one} and ${two})`);
    assert.ok(blobCount(join(disks, 'ac')) > 0, 'the action cache is on its configured disk');
  });
});
