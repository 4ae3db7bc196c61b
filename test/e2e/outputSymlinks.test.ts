/**
 * Output symlinks as REAPI 2.0 and 2.1 readers see them, through a real farm: a
 * `granary serve` whose embedded worker runs the action in the bubblewrap sandbox.
 * A Command that names its outputs with `output_paths` (v2.1) gets every symlink in
 * `output_symlinks`, and, for readers that only know v2.0 (Google's REAPI Go SDK),
 * also in `output_file_symlinks` or `output_directory_symlinks` by what the link
 * leads to as the command saw it; the action cache serves the same result.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { type Connection, unary } from '../../src/client/connection.js';
import { executeRemotely } from '../../src/client/execute.js';
import { GrpcBlobStore } from '../../src/client/grpcBlobStore.js';
import type { ActionResult, OutputSymlink } from '../../src/gen/build/bazel/remote/execution/v2/remote_execution.js';
import { requireCommand } from '../support/commands.js';
import { useFarm } from '../support/farm.js';
import { dir, file, uploadAction, uploadTree } from '../support/worker.js';

const SCRIPT = [
  'ln -s ../data.txt out/to-file',
  'ln -s ../sub out/to-directory',
  'ln -s /etc/passwd out/absolute-file',
  'ln -s /usr/bin out/absolute-directory',
  'ln -s nowhere out/dangling',
].join(' && ');

const OUTPUTS = ['out/to-file', 'out/to-directory', 'out/absolute-file', 'out/absolute-directory', 'out/dangling'];

const listed = (symlinks: readonly OutputSymlink[]) => symlinks.map((s) => `${s.path} -> ${s.target}`).sort();

describe('output symlinks through a real worker', { skip: requireCommand('bwrap'), timeout: 120_000 }, () => {
  const farm = useFarm({ name: 'output-symlinks', embeddedWorkers: 1, serveFlags: ['--sandbox', 'bubblewrap'] });
  let connection: Connection;

  before(() => {
    connection = farm.connect();
  });

  test('symlinks named by output_paths are reported in the v2.1 field and, by target type, in the v2.0 fields', async () => {
    const cas = new GrpcBlobStore(connection);
    const inputRoot = await uploadTree(cas, {
      'data.txt': file('data'),
      sub: dir({ 'inner.txt': file('inner') }),
      out: dir(),
    });
    const action = await uploadAction(cas, { arguments: ['/bin/sh', '-c', SCRIPT], outputPaths: OUTPUTS, inputRoot });
    const response = await executeRemotely(connection, action);
    assert.equal(response.status?.code ?? 0, 0, response.status?.message);
    const result = response.result as ActionResult;
    assert.equal(result.exitCode, 0);

    const check = (actionResult: ActionResult, where: string) => {
      assert.deepEqual(
        listed(actionResult.outputSymlinks),
        [
          'out/absolute-directory -> /usr/bin',
          'out/absolute-file -> /etc/passwd',
          'out/dangling -> nowhere',
          'out/to-directory -> ../sub',
          'out/to-file -> ../data.txt',
        ],
        `${where}: output_symlinks (v2.1) holds every symlink`,
      );
      assert.deepEqual(
        listed(actionResult.outputFileSymlinks),
        ['out/absolute-file -> /etc/passwd', 'out/to-file -> ../data.txt'],
        `${where}: output_file_symlinks (v2.0) holds the symlinks to files`,
      );
      assert.deepEqual(
        listed(actionResult.outputDirectorySymlinks),
        ['out/absolute-directory -> /usr/bin', 'out/to-directory -> ../sub'],
        `${where}: output_directory_symlinks (v2.0) holds the symlinks to directories`,
      );
      assert.deepEqual(actionResult.outputFiles, [], `${where}: no symlink is followed into an output file`);
      assert.deepEqual(actionResult.outputDirectories, [], `${where}: no symlink is followed into a tree`);
    };
    check(result, 'Execute');

    const cached = await unary<ActionResult>((done) =>
      connection.actionCache.getActionResult(
        {
          instanceName: '',
          actionDigest: action,
          inlineStdout: false,
          inlineStderr: false,
          inlineOutputFiles: [],
          digestFunction: 0,
        },
        done,
      ),
    );
    check(cached, 'GetActionResult');
  });
});
