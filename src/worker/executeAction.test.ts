import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { after, before, describe, test } from 'node:test';
import {
  type ActionWithInputs,
  blobText,
  dir,
  file,
  type Harness,
  harnessDeps,
  minimalShellRoot,
  newHarness,
  processWithArgumentExists,
  putBlob,
  readTree,
  runAction,
  uploadAction,
  uploadTree,
} from '../../test/support/worker.js';
import { backgroundContext } from '../context/requestContext.js';
import { digestOf, formatDigest } from '../digest/digest.js';
import {
  Action,
  Command,
  Command_OutputDirectoryFormat,
  type ExecuteResponse,
} from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import type { Timestamp } from '../gen/google/protobuf/timestamp.js';
import { PreconditionFailure } from '../gen/google/rpc/error_details.js';
import { getBuffer } from '../storage/blobStore.js';
import { Code } from '../util/status.js';
import { type ExecuteActionDeps, executeAction, sandboxProfileFor } from './executeAction.js';
import { bubblewrapAvailable } from './sandbox.js';

/** The context of every storage call in these tests. */
const context = backgroundContext();

const bwrapUsable = await bubblewrapAvailable();
const needsBwrap = { skip: bwrapUsable ? false : 'bubblewrap cannot create namespaces here' };
const ENV = { PATH: '/usr/bin:/bin' };

const ms = (t: Timestamp | undefined) => (t ? t.seconds * 1000 + t.nanos / 1e6 : Number.NaN);

describe('executeAction', () => {
  let h: Harness;
  before(async () => {
    h = await newHarness();
  });
  after(async () => {
    await h.close();
  });

  const run = (spec: ActionWithInputs, extra: Partial<ExecuteActionDeps> = {}): Promise<ExecuteResponse> =>
    runAction(h, { env: ENV, ...spec }, { killGraceMs: 500, ...extra });
  const stdoutOf = (response: ExecuteResponse) => blobText(h.cas, response.result?.stdoutDigest);
  const stderrOf = (response: ExecuteResponse) => blobText(h.cas, response.result?.stderrDigest);

  test(
    'a command writing an output file and an output directory gives the right ActionResult and Tree',
    needsBwrap,
    async () => {
      const response = await run({
        arguments: [
          'sh',
          '-c',
          'mkdir -p out/dir/sub out/dir/empty && echo data > out/dir/sub/f.txt && ln -s sub/f.txt out/dir/link && ' +
            'cat in/input.txt > out/file.txt && echo done',
        ],
        inputs: { in: dir({ 'input.txt': file('from input\n') }) },
        outputFiles: ['out/file.txt'],
        outputDirectories: ['out/dir'],
      });
      assert.equal(response.status?.code, Code.OK, response.status?.message);
      assert.equal(response.cachedResult, false);
      const result = response.result!;
      assert.equal(result.exitCode, 0, await stderrOf(response));
      assert.equal(await stdoutOf(response), 'done\n');
      assert.equal(await stderrOf(response), '');
      assert.deepEqual(
        result.outputFiles.map((f) => [f.path, formatDigest(f.digest!), f.isExecutable]),
        [['out/file.txt', formatDigest(digestOf('from input\n')), false]],
      );
      assert.equal(await blobText(h.cas, result.outputFiles[0]!.digest), 'from input\n');
      assert.equal(result.outputDirectories.length, 1);
      const tree = await readTree(h.cas, result.outputDirectories[0]!.treeDigest);
      assert.deepEqual(
        tree.root!.directories.map((d) => d.name),
        ['empty', 'sub'],
      );
      assert.deepEqual(
        tree.root!.symlinks.map((s) => [s.name, s.target]),
        [['link', 'sub/f.txt']],
      );
      assert.equal(tree.children.length, 2, 'the empty directory and sub');
      const sub = tree.children.find((c) => c.files.length > 0)!;
      assert.equal(await blobText(h.cas, sub.files[0]!.digest), 'data\n');
      assert.equal(result.outputDirectories[0]!.rootDirectoryDigest, undefined, 'TREE_ONLY by default');

      const m = result.executionMetadata!;
      assert.equal(m.worker, 'test-worker');
      const order = [
        m.workerStartTimestamp,
        m.inputFetchStartTimestamp,
        m.inputFetchCompletedTimestamp,
        m.executionStartTimestamp,
        m.executionCompletedTimestamp,
        m.outputUploadStartTimestamp,
        m.outputUploadCompletedTimestamp,
        m.workerCompletedTimestamp,
      ].map(ms);
      for (const value of order) assert.ok(Number.isFinite(value));
      assert.deepEqual(
        [...order].sort((a, b) => a - b),
        order,
        'timestamps are in order',
      );
    },
  );

  test('output_paths with .. are collected relative to the working directory', needsBwrap, async () => {
    const response = await run({
      arguments: [
        'sh',
        '-c',
        'mkdir -p ../../install/bin && echo tool > ../../install/bin/tool && chmod +x ../../install/bin/tool',
      ],
      inputs: { build: dir({ src: dir({ Makefile: file('all:\n') }) }) },
      workingDirectory: 'build/src',
      outputPaths: ['../../install'],
      outputDirectoryFormat: Command_OutputDirectoryFormat.DIRECTORY_ONLY,
    });
    assert.equal(response.status?.code, Code.OK, response.status?.message);
    assert.equal(response.result!.exitCode, 0, await stderrOf(response));
    const output = response.result!.outputDirectories[0]!;
    assert.equal(output.path, '../../install');
    assert.ok(output.rootDirectoryDigest, 'DIRECTORY_ONLY asks for root_directory_digest');
    const tree = await readTree(h.cas, output.treeDigest);
    assert.deepEqual(
      tree.root!.directories.map((d) => d.name),
      ['bin'],
    );
    assert.equal(tree.children[0]!.files[0]!.isExecutable, true);
    // Each Directory message is in the CAS too.
    assert.ok(
      (await h.cas.findMissing(context, [output.rootDirectoryDigest, ...tree.root!.directories.map((d) => d.digest!)]))
        .length === 0,
    );
  });

  test('an output path leaving the input root is INVALID_ARGUMENT', async () => {
    const response = await run({ arguments: ['true'], workingDirectory: 'a', outputPaths: ['../../../etc/passwd'] });
    assert.equal(response.status?.code, Code.INVALID_ARGUMENT);
    assert.equal(response.result, undefined);
  });

  test('host tools such as /bin/sh and gcc work in the host-tools sandbox', needsBwrap, async () => {
    const shell = await run({ arguments: ['/bin/sh', '-c', 'echo $((6 * 7))'] });
    assert.equal(await stdoutOf(shell), '42\n');
    if (!existsSync('/usr/bin/gcc')) return;
    const compiled = await run({
      arguments: ['/usr/bin/gcc', '-o', 'bin/hello', 'src/hello.c'],
      inputs: {
        src: dir({ 'hello.c': file('#include <stdio.h>\nint main(void) { puts("hello from gcc"); return 0; }\n') }),
      },
      outputPaths: ['bin/hello'],
    });
    assert.equal(compiled.result?.exitCode, 0, await stderrOf(compiled));
    const binary = compiled.result!.outputFiles[0]!;
    assert.equal(binary.path, 'bin/hello');
    assert.equal(binary.isExecutable, true);
    const ran = await run({
      arguments: ['./hello'],
      inputs: { hello: file((await getBuffer(context, h.cas, binary.digest!))!, true) },
    });
    assert.equal(await stdoutOf(ran), 'hello from gcc\n');
  });

  test('the sandbox cannot write outside the exec root, and its /tmp is private', needsBwrap, async () => {
    const marker = `granary-tmp-marker-${process.pid}-${Date.now()}`;
    const response = await run({
      arguments: [
        'sh',
        '-c',
        `echo x > /tmp/${marker} && echo tmp-ok; ` +
          `touch /etc/${marker} 2>/dev/null && echo etc-WRITABLE; touch /usr/${marker} 2>/dev/null && echo usr-WRITABLE; ` +
          'echo inside > inside.txt && echo root-ok',
      ],
      outputPaths: ['inside.txt'],
    });
    assert.equal(await stdoutOf(response), 'tmp-ok\nroot-ok\n');
    assert.equal(existsSync(`/tmp/${marker}`), false);
    assert.equal(existsSync(`/etc/${marker}`), false);
    assert.equal(existsSync(`/usr/${marker}`), false);
    assert.equal(response.result!.outputFiles.length, 1);
  });

  test('the sandbox has no network: a server on the host loopback cannot be reached', needsBwrap, async () => {
    if (!existsSync('/bin/bash')) return;
    let connections = 0;
    const server = createServer((socket) => {
      connections++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    try {
      const script = `echo hi > /dev/tcp/127.0.0.1/${port} && echo connected || echo refused`;
      const sandboxed = await run({ arguments: ['/bin/bash', '-c', script] });
      assert.equal(await stdoutOf(sandboxed), 'refused\n');
      assert.equal(connections, 0);
      // Control: the same command unsandboxed does connect.
      const unsandboxed = await run({ arguments: ['/bin/bash', '-c', script] }, { sandbox: 'none' });
      assert.equal(await stdoutOf(unsandboxed), 'connected\n');
    } finally {
      server.close();
    }
  });

  test('a timeout yields DEADLINE_EXCEEDED with the result filled and partial stdout kept', needsBwrap, async () => {
    const marker = '33.0417';
    const started = Date.now();
    const response = await run({
      arguments: ['sh', '-c', `echo partial; echo oops >&2; sleep ${marker}`],
      timeoutMs: 500,
    });
    assert.ok(Date.now() - started < 10_000);
    assert.equal(response.status?.code, Code.DEADLINE_EXCEEDED);
    assert.ok(response.result);
    assert.equal(await stdoutOf(response), 'partial\n');
    assert.equal(await stderrOf(response), 'oops\n');
    assert.equal(await processWithArgumentExists(marker), false);
  });

  test('an Action carried by the lease runs with its timeout, without being in the CAS', async () => {
    const inputRoot = await uploadTree(h.cas, {});
    const commandDigest = await putBlob(
      h.cas,
      Buffer.from(Command.encode(Command.fromPartial({ arguments: ['sleep', '35.0417'] })).finish()),
    );
    // Never uploaded: the worker must run what the lease carries.
    const action = Action.fromPartial({
      commandDigest,
      inputRootDigest: inputRoot,
      timeout: { seconds: 0, nanos: 4e8 },
    });
    const started = Date.now();
    const response = await executeAction(
      { action },
      harnessDeps(h, { sandbox: 'none', defaultTimeoutMs: 60_000, killGraceMs: 500 }),
    );
    assert.equal(response.status?.code, Code.DEADLINE_EXCEEDED, response.status?.message);
    assert.match(response.status?.message ?? '', /timeout of 400 ms/);
    assert.ok(Date.now() - started < 30_000, 'the worker default of a minute did not apply');
  });

  test('a lease naming neither an Action nor its digest is INVALID_ARGUMENT', async () => {
    const response = await executeAction({}, harnessDeps(h, { sandbox: 'none', defaultTimeoutMs: 60_000 }));
    assert.equal(response.status?.code, Code.INVALID_ARGUMENT);
  });

  test('a timeout longer than the maximum is INVALID_ARGUMENT', async () => {
    const response = await run({ arguments: ['true'], timeoutMs: 10_000 }, { maximumTimeoutMs: 5000 });
    assert.equal(response.status?.code, Code.INVALID_ARGUMENT);
  });

  test('an AbortSignal kills the running command and the response is CANCELLED', needsBwrap, async () => {
    const marker = '34.0417';
    const controller = new AbortController();
    const pending = run({ arguments: ['sleep', marker] }, { signal: controller.signal });
    for (let i = 0; i < 200 && !(await processWithArgumentExists(marker)); i++)
      await new Promise((r) => setTimeout(r, 25));
    assert.equal(await processWithArgumentExists(marker), true, 'the command started');
    controller.abort();
    const response = await pending;
    assert.equal(response.status?.code, Code.CANCELLED);
    assert.equal(await processWithArgumentExists(marker), false);
  });

  test(
    'an output symlink pointing outside is uploaded as a symlink, never as the file content',
    needsBwrap,
    async () => {
      const response = await run({
        arguments: [
          'sh',
          '-c',
          'ln -s /etc/passwd out/link && ln -s /etc out/etc && mkdir d && ln -s /etc/passwd d/inner',
        ],
        outputPaths: ['out/link', 'out/etc/passwd', 'd'],
      });
      const result = response.result!;
      assert.equal(result.exitCode, 0, await stderrOf(response));
      assert.deepEqual(
        result.outputSymlinks.map((s) => [s.path, s.target]),
        [['out/link', '/etc/passwd']],
      );
      assert.deepEqual(result.outputFiles, []);
      const tree = await readTree(h.cas, result.outputDirectories[0]!.treeDigest);
      assert.deepEqual(
        tree.root!.symlinks.map((s) => [s.name, s.target]),
        [['inner', '/etc/passwd']],
      );
      const passwd = digestOf(await readFile('/etc/passwd'));
      assert.deepEqual(await h.cas.findMissing(context, [passwd]), [passwd], '/etc/passwd was not uploaded');
    },
  );

  test('an action asking for resource limits on a worker without cgroups is refused with FAILED_PRECONDITION', async () => {
    const response = await run({
      arguments: ['sh', '-c', 'echo ran > ran.txt'],
      outputFiles: ['ran.txt'],
      platform: [{ name: 'memory-limit', value: '64MiB' }],
    });
    assert.equal(response.status?.code, Code.FAILED_PRECONDITION);
    assert.match(response.status?.message ?? '', /cannot enforce them \(no usable cgroups\)/);
    assert.equal(response.result, undefined, 'nothing ran');
  });

  test('a missing input blob gives FAILED_PRECONDITION with a MISSING violation', async () => {
    const inputRoot = await uploadTree(h.cas, { 'lost.txt': file('never uploaded') }, new Set(['never uploaded']));
    const actionDigest = await uploadAction(h.cas, { arguments: ['true'], inputRoot });
    const response = await executeAction({ actionDigest }, harnessDeps(h, { defaultTimeoutMs: 5000 }));
    assert.equal(response.status?.code, Code.FAILED_PRECONDITION);
    const detail = response.status!.details[0]!;
    assert.equal(detail.typeUrl, 'type.googleapis.com/google.rpc.PreconditionFailure');
    const lost = digestOf('never uploaded');
    assert.deepEqual(
      PreconditionFailure.decode(detail.value).violations.map((v) => [v.type, v.subject]),
      [['MISSING', `blobs/${lost.hash}/${lost.sizeBytes}`]],
    );
  });

  test('a missing Action blob gives FAILED_PRECONDITION with a MISSING violation', async () => {
    const absent = digestOf('no such action');
    const response = await executeAction(
      { actionDigest: absent },
      harnessDeps(h, { sandbox: 'none', defaultTimeoutMs: 5000 }),
    );
    assert.equal(response.status?.code, Code.FAILED_PRECONDITION);
    const violations = PreconditionFailure.decode(response.status!.details[0]!.value).violations;
    assert.equal(violations[0]!.subject, `blobs/${absent.hash}/${absent.sizeBytes}`);
  });

  test('modifying a hard-linked input inside the action does not poison a later action', needsBwrap, async () => {
    const inputs = { 'data.txt': file('original content\n') };
    const first = await run({
      arguments: ['sh', '-c', 'echo corrupted > data.txt; chmod 666 data.txt; cat data.txt'],
      inputs,
    });
    assert.equal(await stdoutOf(first), 'corrupted\n', 'the action could write to its input');
    const second = await run({ arguments: ['cat', 'data.txt'], inputs });
    assert.equal(await stdoutOf(second), 'original content\n');
  });

  test('a command that cannot be found exits with 127 and says so on stderr', needsBwrap, async () => {
    const response = await run({ arguments: ['granary-no-such-command'] });
    assert.equal(response.status?.code, Code.OK);
    assert.equal(response.result!.exitCode, 127);
    assert.match((await stderrOf(response)) ?? '', /granary-no-such-command: command not found/);
  });

  test('a hermetic run uses the input root as / with a minimal /bin/sh', needsBwrap, async () => {
    const entries = await minimalShellRoot();
    const response = await run(
      {
        arguments: [
          'sh',
          '-c',
          'echo hermetic > ../out.txt; test -e /etc/passwd || test -e /usr/include || echo isolated; pwd',
        ],
        env: { PATH: '/bin' },
        inputs: { ...entries, work: dir() },
        workingDirectory: 'work',
        outputPaths: ['../out.txt'],
        platform: [{ name: 'sandbox', value: 'hermetic' }],
      },
      { sandbox: sandboxProfileFor },
    );
    assert.equal(response.status?.code, Code.OK, response.status?.message);
    assert.equal(response.result!.exitCode, 0, await stderrOf(response));
    assert.equal(await stdoutOf(response), 'isolated\n/work\n');
    assert.equal(await blobText(h.cas, response.result!.outputFiles[0]!.digest), 'hermetic\n');
  });

  test(
    'an input root with its own /bin/sh runs hermetic without any platform property (BuildStream 2)',
    needsBwrap,
    async () => {
      const entries = await minimalShellRoot();
      const spec = {
        // BuildStream installs to an absolute path and lists it as an output relative to the working directory.
        arguments: ['sh', '-c', 'echo built > /install/file; pwd'],
        env: { PATH: '/usr/bin:/bin' },
        inputs: { ...entries, build: dir({ element: dir() }), install: dir() },
        workingDirectory: 'build/element',
        outputPaths: ['../../install'],
      };
      const response = await run(spec, { sandbox: sandboxProfileFor });
      assert.equal(response.status?.code, Code.OK, response.status?.message);
      assert.equal(response.result!.exitCode, 0, await stderrOf(response));
      assert.equal(await stdoutOf(response), '/build/element\n');
      const tree = await readTree(h.cas, response.result!.outputDirectories[0]!.treeDigest!);
      assert.deepEqual(
        tree.root!.files.map((f) => f.name),
        ['file'],
      );

      // A platform that names a profile keeps it.
      const hostTools = await run(
        { ...spec, platform: [{ name: 'sandbox', value: 'host-tools' }] },
        { sandbox: sandboxProfileFor },
      );
      assert.notEqual(await stdoutOf(hostTools), '/build/element\n');

      // Never unsandboxed: such actions rm -rf absolute paths.
      const refused = await run(spec, { sandbox: 'none' });
      assert.equal(refused.status?.code, Code.FAILED_PRECONDITION);
      assert.match(refused.status!.message, /unsandboxed/);
    },
  );

  test('an unusable sandbox fails the action with FAILED_PRECONDITION instead of running it unsandboxed', async () => {
    const response = await run({ arguments: ['true'] }, { bwrapPath: '/nonexistent/bwrap' });
    assert.equal(response.status?.code, Code.FAILED_PRECONDITION);
    assert.match(response.status!.message, /unsandboxed/);
  });

  test('the work directory is cleaned up after every action', async () => {
    assert.deepEqual(await readdir(h.workDirectory), []);
  });

  test('sandboxProfileFor picks hermetic only when the platform asks for it', () => {
    assert.equal(sandboxProfileFor([]), 'host-tools');
    assert.equal(sandboxProfileFor([{ name: 'OSFamily', value: 'linux' }]), 'host-tools');
    assert.equal(sandboxProfileFor([{ name: 'sandbox', value: 'hermetic' }]), 'hermetic');
    assert.equal(sandboxProfileFor([{ name: 'chroot', value: 'true' }]), 'hermetic');
    assert.equal(sandboxProfileFor([{ name: 'unixUID', value: '0' }]), 'hermetic');
    assert.equal(sandboxProfileFor([{ name: 'sandbox', value: 'none' }]), 'host-tools');
  });
});
