import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readFile, realpath, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { digestKey, digestOf, SHA256 } from '../digest/digest.js';
import {
  type Command,
  Command_OutputDirectoryFormat,
  Directory,
  Tree,
} from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import { Code, StatusError } from '../util/status.js';
import { collectOutputs, createOutputParents } from './outputs.js';

function command(fields: Partial<Command>): Command {
  return {
    arguments: ['true'],
    environmentVariables: [],
    outputFiles: [],
    outputDirectories: [],
    outputPaths: [],
    platform: undefined,
    workingDirectory: '',
    outputNodeProperties: [],
    outputDirectoryFormat: Command_OutputDirectoryFormat.TREE_ONLY,
    ...fields,
  };
}

async function withRoot(fn: (root: string) => Promise<void>): Promise<void> {
  const root = await realpath(await mkdtemp(join(tmpdir(), 'granary-outputs-')));
  try {
    await fn(root);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

const collect = (root: string, cmd: Command, semantics: 'host' | 'chroot' = 'host') =>
  collectOutputs({ root, command: cmd, semantics, digestFunction: SHA256 });

describe('outputs', () => {
  test('creates the parent directories of every declared output, not the outputs themselves', async () => {
    await withRoot(async (root) => {
      await createOutputParents(
        root,
        command({ workingDirectory: 'wd', outputFiles: ['obj/a.o'], outputDirectories: ['gen/dir'], outputPaths: [] }),
        'host',
      );
      assert.ok((await stat(join(root, 'wd/obj'))).isDirectory());
      assert.ok((await stat(join(root, 'wd/gen'))).isDirectory());
      await assert.rejects(stat(join(root, 'wd/gen/dir')));
      await createOutputParents(
        root,
        command({ workingDirectory: 'x/y', outputPaths: ['../../install/usr/bin/tool'] }),
        'host',
      );
      assert.ok((await stat(join(root, 'install/usr/bin'))).isDirectory());
    });
  });

  test('an output path leaving the input root is INVALID_ARGUMENT', async () => {
    await withRoot(async (root) => {
      await assert.rejects(
        createOutputParents(root, command({ workingDirectory: 'a', outputPaths: ['../../escape'] }), 'host'),
        (e: unknown) => e instanceof StatusError && e.code === Code.INVALID_ARGUMENT,
      );
    });
  });

  test('an output directory becomes a Tree with every subdirectory, sorted files and symlink nodes', async () => {
    await withRoot(async (root) => {
      await mkdir(join(root, 'out/sub/empty'), { recursive: true });
      await mkdir(join(root, 'out/also-empty'));
      await writeFile(join(root, 'out/b.txt'), 'b');
      await writeFile(join(root, 'out/a.txt'), 'a');
      await writeFile(join(root, 'out/sub/tool'), '#!/bin/sh\n');
      await chmod(join(root, 'out/sub/tool'), 0o755);
      await symlink('/etc/passwd', join(root, 'out/passwd-link'));
      const cmd = command({
        outputPaths: ['out', 'missing'],
        outputDirectoryFormat: Command_OutputDirectoryFormat.TREE_AND_DIRECTORY,
      });
      const { fields, uploads } = await collect(root, cmd);
      assert.equal(fields.outputDirectories.length, 1);
      const output = fields.outputDirectories[0]!;
      assert.equal(output.path, 'out');
      assert.equal(output.isTopologicallySorted, true);
      const uploaded = new Map(uploads.map((u) => [digestKey(u.digest), u]));
      const treeData = uploaded.get(digestKey(output.treeDigest!))!.data!;
      const tree = Tree.decode(treeData);
      assert.deepEqual(
        tree.root!.files.map((f) => f.name),
        ['a.txt', 'b.txt'],
      );
      assert.deepEqual(
        tree.root!.directories.map((d) => d.name),
        ['also-empty', 'sub'],
      );
      assert.deepEqual(tree.root!.symlinks, [
        { name: 'passwd-link', target: '/etc/passwd', nodeProperties: undefined },
      ]);
      // also-empty and sub/empty are identical empty Directory messages: one child entry.
      assert.equal(tree.children.length, 2);
      const sub = tree.children.find((c) => c.files.length === 1)!;
      assert.equal(sub.files[0]!.name, 'tool');
      assert.equal(sub.files[0]!.isExecutable, true);
      assert.deepEqual(
        sub.directories.map((d) => d.name),
        ['empty'],
      );
      assert.ok(
        tree.children.some((c) => c.files.length === 0 && c.directories.length === 0 && c.symlinks.length === 0),
      );
      // TREE_AND_DIRECTORY: the root Directory is uploaded and named.
      const rootDirectory = Directory.decode(uploaded.get(digestKey(output.rootDirectoryDigest!))!.data!);
      assert.deepEqual(rootDirectory, tree.root);
      assert.equal(uploaded.has(digestKey(digestOf(Buffer.from(Directory.encode(sub).finish())))), true);
      // The symlink's target is never read.
      const passwd = digestOf(await readFile('/etc/passwd'));
      assert.equal(uploaded.has(digestKey(passwd)), false);
    });
  });

  test('an output symlink pointing outside the root is reported as a symlink, never as the file', async () => {
    await withRoot(async (root) => {
      await symlink('/etc/passwd', join(root, 'link'));
      await symlink('/etc', join(root, 'etc-dir'));
      const { fields, uploads } = await collect(root, command({ outputPaths: ['link', 'etc-dir/passwd'] }));
      assert.deepEqual(fields.outputSymlinks, [{ path: 'link', target: '/etc/passwd', nodeProperties: undefined }]);
      assert.deepEqual(fields.outputFiles, []);
      assert.deepEqual(uploads, []);
      const legacy = await collect(root, command({ outputFiles: ['link', 'etc-dir/passwd'] }));
      assert.deepEqual(
        legacy.fields.outputFileSymlinks.map((s) => s.target),
        ['/etc/passwd'],
      );
      assert.deepEqual(legacy.fields.outputSymlinks, []);
      assert.deepEqual(legacy.uploads, []);
    });
  });

  test('with output_paths, symlinks also fill the legacy fields by target type', async () => {
    await withRoot(async (root) => {
      await mkdir(join(root, 'd'));
      await writeFile(join(root, 'f'), 'f');
      await symlink('d', join(root, 'to-d'));
      await symlink('f', join(root, 'to-f'));
      await symlink('nowhere', join(root, 'dangling'));
      const { fields } = await collect(root, command({ outputPaths: ['to-d', 'to-f', 'dangling'] }));
      assert.deepEqual(
        fields.outputSymlinks.map((s) => s.path),
        ['dangling', 'to-d', 'to-f'],
      );
      assert.deepEqual(
        fields.outputFileSymlinks.map((s) => s.path),
        ['to-f'],
      );
      assert.deepEqual(
        fields.outputDirectorySymlinks.map((s) => s.path),
        ['to-d'],
      );
    });
  });

  test('with output_paths, absolute symlinks fill the legacy fields by what the sandbox shows at their target', async () => {
    await withRoot(async (root) => {
      await symlink('/etc/passwd', join(root, 'abs-file'));
      await symlink('/usr/bin', join(root, 'abs-dir'));
      await symlink('/usr/../var/lib', join(root, 'abs-hidden'));
      await symlink('/usr/no-such-thing', join(root, 'abs-dangling'));
      const looked: string[] = [];
      // A host-tools-like view: /usr and /etc are shown, nothing else of the host.
      const sandboxView = async (path: string) => {
        looked.push(path);
        return path.startsWith('/usr/') || path.startsWith('/etc/') ? path : undefined;
      };
      const outputs = ['abs-file', 'abs-dir', 'abs-hidden', 'abs-dangling'];
      const { fields, uploads } = await collectOutputs({
        root,
        command: command({ outputPaths: outputs }),
        semantics: 'host',
        digestFunction: SHA256,
        sandboxView,
      });
      assert.deepEqual(
        fields.outputSymlinks.map((s) => s.path),
        ['abs-dangling', 'abs-dir', 'abs-file', 'abs-hidden'],
      );
      assert.deepEqual(
        fields.outputFileSymlinks.map((s) => `${s.path} -> ${s.target}`),
        ['abs-file -> /etc/passwd'],
      );
      assert.deepEqual(
        fields.outputDirectorySymlinks.map((s) => `${s.path} -> ${s.target}`),
        ['abs-dir -> /usr/bin'],
      );
      // '..' is resolved before asking the view, so /usr/.. never reaches the host's /var.
      assert.ok(looked.includes('/var/lib'), looked.join(', '));
      assert.deepEqual(uploads, []);
      // Outputs named the v2.0 way keep today's lists, and never fill output_symlinks.
      const legacy = await collectOutputs({
        root,
        command: command({ outputFiles: ['abs-file'], outputDirectories: ['abs-dir'] }),
        semantics: 'host',
        digestFunction: SHA256,
        sandboxView,
      });
      assert.deepEqual(
        legacy.fields.outputFileSymlinks.map((s) => s.path),
        ['abs-file'],
      );
      assert.deepEqual(
        legacy.fields.outputDirectorySymlinks.map((s) => s.path),
        ['abs-dir'],
      );
      assert.deepEqual(legacy.fields.outputSymlinks, []);
    });
  });

  test('output files record digest and executable bit, relative to the working directory', async () => {
    await withRoot(async (root) => {
      await mkdir(join(root, 'wd'));
      await writeFile(join(root, 'out.bin'), 'binary', { mode: 0o755 });
      const { fields } = await collect(root, command({ workingDirectory: 'wd', outputPaths: ['../out.bin'] }));
      assert.deepEqual(
        fields.outputFiles.map((f) => ({ path: f.path, digest: f.digest, isExecutable: f.isExecutable })),
        [{ path: '../out.bin', digest: digestOf('binary'), isExecutable: true }],
      );
    });
  });

  test('a legacy output file that is a directory is FAILED_PRECONDITION', async () => {
    await withRoot(async (root) => {
      await mkdir(join(root, 'not-a-file'));
      await assert.rejects(
        collect(root, command({ outputFiles: ['not-a-file'] })),
        (e: unknown) => e instanceof StatusError && e.code === Code.FAILED_PRECONDITION,
      );
    });
  });
});
