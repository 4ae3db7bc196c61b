import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer } from '../../test/support/grpc.js';
import { rejectsWithCode } from '../../test/support/status.js';
import { unary } from '../client/connection.js';
import { type Digest, digestOf } from '../digest/digest.js';
import {
  ActionResult,
  type BatchUpdateBlobsResponse,
  DigestFunction_Value,
  Directory,
  type GetActionResultRequest,
  Tree,
  type UpdateActionResultRequest,
} from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import { Code } from '../util/status.js';

let t: TestServer;
before(async () => {
  t = await startTestServer();
});
after(async () => {
  await t.close();
});

let counter = 0;
/** A fresh action digest per test, so tests do not see each other's results. */
const newActionDigest = () => digestOf(`action ${counter++} ${Date.now()}`);

function blob(text: string | Buffer) {
  const data = typeof text === 'string' ? Buffer.from(text) : text;
  return { digest: digestOf(data), data };
}

async function upload(...blobs: Array<{ digest: Digest; data: Buffer }>): Promise<void> {
  const response = await unary<BatchUpdateBlobsResponse>((done) =>
    t.client.cas.batchUpdateBlobs(
      { instanceName: '', digestFunction: 0, requests: blobs.map((b) => ({ ...b, compressor: 0 })) },
      done,
    ),
  );
  assert.ok(
    response.responses.every((r) => r.status?.code === Code.OK),
    'uploads succeed',
  );
}

function update(request: Partial<UpdateActionResultRequest>): Promise<ActionResult> {
  return unary<ActionResult>((done) =>
    t.client.actionCache.updateActionResult(
      {
        instanceName: '',
        actionDigest: undefined,
        actionResult: undefined,
        resultsCachePolicy: undefined,
        digestFunction: 0,
        ...request,
      },
      done,
    ),
  );
}

function get(request: Partial<GetActionResultRequest>): Promise<ActionResult> {
  return unary<ActionResult>((done) =>
    t.client.actionCache.getActionResult(
      {
        instanceName: '',
        actionDigest: undefined,
        inlineStdout: false,
        inlineStderr: false,
        inlineOutputFiles: [],
        digestFunction: 0,
        ...request,
      },
      done,
    ),
  );
}

const outputFile = (path: string, digest: Digest) => ({ path, digest, isExecutable: false });
const encoded = (result: ActionResult) => Buffer.from(ActionResult.encode(result).finish());

describe('ActionCache', () => {
  it('returns the result stored by UpdateActionResult from GetActionResult', async () => {
    const out = blob('output file contents');
    const stdout = blob('hello from stdout');
    const stderr = blob('warnings on stderr');
    await upload(out, stdout, stderr);
    const actionDigest = newActionDigest();
    const result = ActionResult.fromPartial({
      outputFiles: [outputFile('bin/out', out.digest), outputFile('bin/empty', digestOf(''))],
      outputSymlinks: [{ path: 'bin/link', target: 'out' }],
      exitCode: 3,
      stdoutDigest: stdout.digest,
      stderrDigest: stderr.digest,
      executionMetadata: { worker: 'test-worker' },
    });
    const stored = await update({ actionDigest, actionResult: result });
    assert.ok(encoded(stored).equals(encoded(result)), 'UpdateActionResult returns the stored result');
    const fetched = await get({ actionDigest });
    assert.deepEqual(fetched, result);
    assert.equal(fetched.stdoutRaw.length, 0, 'nothing is inlined unless asked');
  });

  it('fails GetActionResult with NOT_FOUND for an action it has no result for', async () => {
    await rejectsWithCode(get({ actionDigest: newActionDigest() }), Code.NOT_FOUND);
  });

  it('treats a result whose output file is missing from the CAS as NOT_FOUND until the file is uploaded', async () => {
    const out = blob('this output file is uploaded late');
    const actionDigest = newActionDigest();
    await update({
      actionDigest,
      actionResult: ActionResult.fromPartial({ outputFiles: [outputFile('out', out.digest)] }),
    });
    await rejectsWithCode(get({ actionDigest }), Code.NOT_FOUND);
    await upload(out);
    assert.equal((await get({ actionDigest })).outputFiles[0]?.path, 'out');
  });

  it('treats a result whose stdout or stderr is missing from the CAS as NOT_FOUND', async () => {
    const stdoutAction = newActionDigest();
    await update({
      actionDigest: stdoutAction,
      actionResult: ActionResult.fromPartial({ stdoutDigest: blob('lost stdout').digest }),
    });
    await rejectsWithCode(get({ actionDigest: stdoutAction }), Code.NOT_FOUND);
    const stderrAction = newActionDigest();
    await update({
      actionDigest: stderrAction,
      actionResult: ActionResult.fromPartial({ stderrDigest: blob('lost stderr').digest }),
    });
    await rejectsWithCode(get({ actionDigest: stderrAction }), Code.NOT_FOUND);
  });

  it('treats a result whose output directory misses a file of its Tree, or the Tree itself, as NOT_FOUND', async () => {
    const present = blob('file in the output tree');
    const absent = blob('file of a subdirectory that never reached the CAS');
    const child = Directory.fromPartial({ files: [{ name: 'deep.txt', digest: absent.digest }] });
    const childDigest = digestOf(Buffer.from(Directory.encode(child).finish()));
    const tree = Tree.fromPartial({
      root: {
        files: [{ name: 'top.txt', digest: present.digest }],
        directories: [{ name: 'sub', digest: childDigest }],
      },
      children: [child],
    });
    const treeBlob = blob(Buffer.from(Tree.encode(tree).finish()));
    const actionDigest = newActionDigest();
    await update({
      actionDigest,
      actionResult: ActionResult.fromPartial({ outputDirectories: [{ path: 'outdir', treeDigest: treeBlob.digest }] }),
    });
    await upload(present);
    await rejectsWithCode(get({ actionDigest }), Code.NOT_FOUND, 'the tree is missing');
    await upload(treeBlob);
    await rejectsWithCode(get({ actionDigest }), Code.NOT_FOUND, 'a file in a child directory is missing');
    await upload(absent);
    assert.equal((await get({ actionDigest })).outputDirectories[0]?.path, 'outdir');
  });

  it('inlines stdout, stderr and the requested output files when asked', async () => {
    const a = blob('contents of a');
    const b = blob('contents of b');
    const stdout = blob('inline me (stdout)');
    const stderr = blob('inline me (stderr)');
    await upload(a, b, stdout, stderr);
    const actionDigest = newActionDigest();
    await update({
      actionDigest,
      actionResult: ActionResult.fromPartial({
        outputFiles: [outputFile('out/a', a.digest), outputFile('out/b', b.digest)],
        stdoutDigest: stdout.digest,
        stderrDigest: stderr.digest,
      }),
    });
    const all = await get({ actionDigest, inlineStdout: true, inlineStderr: true, inlineOutputFiles: ['out/b'] });
    assert.equal(all.stdoutRaw.toString(), 'inline me (stdout)');
    assert.equal(all.stderrRaw.toString(), 'inline me (stderr)');
    assert.equal(all.outputFiles.find((f) => f.path === 'out/b')?.contents.toString(), 'contents of b');
    assert.equal(
      all.outputFiles.find((f) => f.path === 'out/a')?.contents.length,
      0,
      'files not asked for are not inlined',
    );
    assert.deepEqual(all.stdoutDigest, stdout.digest, 'digests stay set when contents are inlined');
    const onlyStderr = await get({ actionDigest, inlineStderr: true });
    assert.equal(onlyStderr.stdoutRaw.length, 0);
    assert.equal(onlyStderr.stderrRaw.toString(), 'inline me (stderr)');
  });

  it('keeps action results of different instance names apart', async () => {
    const out = blob('instance-specific output');
    await upload(out);
    const actionDigest = newActionDigest();
    const linux = ActionResult.fromPartial({ outputFiles: [outputFile('out', out.digest)], exitCode: 0 });
    const mac = ActionResult.fromPartial({ outputFiles: [outputFile('out', out.digest)], exitCode: 7 });
    await update({ instanceName: 'ci/linux', actionDigest, actionResult: linux });
    await update({ instanceName: 'ci/mac', actionDigest, actionResult: mac });
    assert.equal((await get({ instanceName: 'ci/linux', actionDigest })).exitCode, 0);
    assert.equal((await get({ instanceName: 'ci/mac', actionDigest })).exitCode, 7);
    await rejectsWithCode(get({ instanceName: '', actionDigest }), Code.NOT_FOUND);
    await rejectsWithCode(get({ instanceName: 'ci', actionDigest }), Code.NOT_FOUND);
  });

  it('rejects a malformed action digest with INVALID_ARGUMENT', async () => {
    const result = ActionResult.fromPartial({ exitCode: 0 });
    const bad: Array<[string, Digest | undefined]> = [
      ['missing', undefined],
      ['non-hex', { hash: 'g'.repeat(64), sizeBytes: 10 }],
      ['short', { hash: 'a'.repeat(10), sizeBytes: 10 }],
      ['negative size', { hash: 'a'.repeat(64), sizeBytes: -10 }],
    ];
    for (const [why, actionDigest] of bad) {
      await rejectsWithCode(get({ actionDigest }), Code.INVALID_ARGUMENT, `get: ${why}`);
      await rejectsWithCode(update({ actionDigest, actionResult: result }), Code.INVALID_ARGUMENT, `update: ${why}`);
    }
  });

  it('rejects an unsupported digest function with INVALID_ARGUMENT', async () => {
    const actionDigest = newActionDigest();
    await rejectsWithCode(get({ actionDigest, digestFunction: DigestFunction_Value.BLAKE3 }), Code.INVALID_ARGUMENT);
    await rejectsWithCode(
      update({ actionDigest, actionResult: ActionResult.fromPartial({}), digestFunction: DigestFunction_Value.BLAKE3 }),
      Code.INVALID_ARGUMENT,
    );
  });

  it('rejects an update without a result or with malformed output digests or paths with INVALID_ARGUMENT', async () => {
    const actionDigest = newActionDigest();
    await rejectsWithCode(update({ actionDigest }), Code.INVALID_ARGUMENT, 'no action_result');
    const badResults = [
      ActionResult.fromPartial({ outputFiles: [outputFile('out', { hash: 'nothex', sizeBytes: 1 })] }),
      ActionResult.fromPartial({ outputFiles: [{ path: 'out', digest: undefined }] }),
      ActionResult.fromPartial({ outputFiles: [outputFile('/abs/out', digestOf('x'))] }),
      ActionResult.fromPartial({ outputDirectories: [{ path: 'dir', treeDigest: { hash: 'a', sizeBytes: 1 } }] }),
      ActionResult.fromPartial({ stdoutDigest: { hash: 'a'.repeat(64), sizeBytes: -1 } }),
    ];
    for (const actionResult of badResults) {
      await rejectsWithCode(
        update({ actionDigest, actionResult }),
        Code.INVALID_ARGUMENT,
        JSON.stringify(actionResult),
      );
    }
    await rejectsWithCode(get({ actionDigest }), Code.NOT_FOUND, 'nothing was stored');
  });
});
