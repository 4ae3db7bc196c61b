/**
 * A farm with tokens and Bazel 4.2.3 (Debian's bazel-bootstrap): bearer tokens
 * through --remote_header, a standalone `granary worker` with a token file,
 * `granary push-dir` with --token-file, tokens reloaded on SIGHUP.
 *
 * Debian's Bazel 4.2.3 cannot speak TLS at all: its netty finds no ALPN in the
 * JDK and every grpcs:// call crashes with "Failed to init TLS infrastructure:
 * JDK provider does not support ALPN protocol". So this farm listens in clear
 * text on loopback (where Granary's clients also send tokens), and TLS and mTLS
 * are proven with BuildStream 2.8.1, buildbox-worker and trexe in
 * modernSecurity.test.ts.
 *
 * What must hold: a token with ac-write fills and reads the cache; callers
 * without a token read but never write under --anonymous read; a read-only
 * token and a cas-write-only token never get an action result in (the
 * uploader's blobs land in the CAS, the reader's do not; the action cache stays
 * clean); a worker needs its own token.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { tokenSha256 } from '../../src/auth/tokenFile.js';
import { type Connection, connect, unary } from '../../src/client/connection.js';
import { digestOf } from '../../src/digest/digest.js';
import {
  ActionResult,
  BatchUpdateBlobsRequest,
  type BatchUpdateBlobsResponse,
  type FindMissingBlobsResponse,
  GetActionResultRequest,
  UpdateActionResultRequest,
} from '../../src/gen/build/bazel/remote/execution/v2/remote_execution.js';
import { Code } from '../../src/util/status.js';
import { bazel, bazelAsync, processSummary } from '../support/bazel.js';
import { bazelWorkspace } from '../support/bazelWorkspace.js';
import { requireCommand } from '../support/commands.js';
import { useFarm } from '../support/farm.js';
import type { GranaryProcess } from '../support/granaryProcess.js';
import { GRANARY_BIN } from '../support/repository.js';
import { rejectsWithCode } from '../support/status.js';

const skip = requireCommand('bazel');

const TOKENS = {
  ci: 'ci-token-5b1d0c3e9a7f4e21',
  reader: 'reader-token-8e2a61f0c4d3',
  uploader: 'uploader-token-3f9c2b7a1e06',
  worker: 'worker-token-6d4e8a2c0b19',
  later: 'later-token-0a1b2c3d4e5f',
};

/** Kinds of processes that ran on this machine (not remote, not cache hits). */
function locallyExecuted(output: string): number {
  return Object.entries(processSummary(output))
    .filter(([kind]) => !['total', 'internal', 'remote', 'remote cache hit'].includes(kind))
    .reduce((sum, [, count]) => sum + count, 0);
}

describe('Bazel 4.2.3 and Granary clients against a farm with tokens', {
  skip,
  timeout: 25 * 60_000,
}, () => {
  let scratch: string;
  let accessFile: string;
  let worker: GranaryProcess | undefined;
  const tokenFile = (name: keyof typeof TOKENS) => join(scratch, `${name}.token`);

  const writeAccessFile = (extra: string[] = []) => {
    writeFileSync(
      accessFile,
      [
        '- name: ci',
        `  sha256: ${tokenSha256(TOKENS.ci)}`,
        '  scopes: [read, cas-write, ac-write, asset-write, execute]',
        '  instances: ["*"]',
        '- name: reader',
        `  token: ${TOKENS.reader}`,
        '  scopes: [read]',
        '  instances: ["*"]',
        '- name: uploader',
        `  token: ${TOKENS.uploader}`,
        '  scopes: [read, cas-write]',
        '  instances: ["*"]',
        '- name: worker',
        `  token: ${TOKENS.worker}`,
        '  scopes: [read, cas-write, bots]',
        '  instances: ["*"]',
        ...extra,
      ].join('\n'),
    );
    chmodSync(accessFile, 0o600);
  };

  const farm = useFarm({
    name: 'bazel-security',
    embeddedWorkers: 0,
    prepare: (started) => {
      scratch = started.scratch;
      for (const [name, token] of Object.entries(TOKENS))
        writeFileSync(tokenFile(name as keyof typeof TOKENS), `${token}\n`);
      accessFile = started.path('access.yaml');
      writeAccessFile();
    },
    serveFlags: () => ['--max-size', '2GiB', '--auth-tokens', accessFile, '--anonymous', 'read'],
  });

  const cacheFlags = (token?: string) => [
    `--remote_cache=${farm.url}`,
    '--remote_timeout=60',
    ...(token ? [`--remote_header=Authorization=Bearer ${token}`] : []),
  ];
  const workspace = (name: string, message: string) => {
    const directory = bazelWorkspace(4, join(scratch, name));
    writeFileSync(join(directory, 'message.txt'), `${message}\n`);
    return directory;
  };
  /** Builds //:banner twice around `clean --expunge`; the second run shows whether the cache had its result. */
  const buildBanner = (directory: string, flags: string[]) =>
    bazel(directory, join(directory, '..', `${directory.split('/').at(-1)}-root`), 'build', [...flags, '//:banner']);
  const cleanBuild = (directory: string, flags: string[]) => {
    const outputRoot = join(directory, '..', `${directory.split('/').at(-1)}-root`);
    assert.equal(bazel(directory, outputRoot, 'clean', ['--expunge']).status, 0);
    return bazel(directory, outputRoot, 'build', [...flags, '//:banner']);
  };
  /** Whether the farm's CAS holds `content` (asked with the ci token). */
  const casHolds = async (content: string) => {
    const connection = connect(farm.url, '', { token: () => TOKENS.ci });
    try {
      const response = await unary<FindMissingBlobsResponse>((done) =>
        connection.cas.findMissingBlobs(
          { instanceName: '', blobDigests: [digestOf(Buffer.from(content))], digestFunction: 0 },
          done,
        ),
      );
      return response.missingBlobDigests.length === 0;
    } finally {
      connection.close();
    }
  };

  const withConnection = async (token: string, use: (connection: Connection) => Promise<void>) => {
    const connection = connect(farm.url, '', { token: () => token });
    try {
      await use(connection);
    } finally {
      connection.close();
    }
  };
  const upload = (connection: Connection, blob: Buffer) =>
    unary<BatchUpdateBlobsResponse>((done) =>
      connection.cas.batchUpdateBlobs(
        BatchUpdateBlobsRequest.fromPartial({ requests: [{ digest: digestOf(blob), data: blob }] }),
        done,
      ),
    );
  /** Claims that the action whose digest is the blob's ran and exited 0. */
  const writeResult = (connection: Connection, blob: Buffer) =>
    unary((done) =>
      connection.actionCache.updateActionResult(
        UpdateActionResultRequest.fromPartial({
          actionDigest: digestOf(blob),
          actionResult: ActionResult.fromPartial({ exitCode: 0 }),
        }),
        done,
      ),
    );

  test('a token with ac-write fills the cache, and a rebuild after clean --expunge hits it', () => {
    const directory = workspace('ci', 'written by ci');
    const first = buildBanner(directory, cacheFlags(TOKENS.ci));
    assert.equal(first.status, 0, first.output);
    assert.equal(locallyExecuted(first.output), 1, first.output);
    const second = cleanBuild(directory, cacheFlags(TOKENS.ci));
    assert.equal(second.status, 0, second.output);
    assert.equal(processSummary(second.output)['remote cache hit'], 1, second.output);
    assert.equal(locallyExecuted(second.output), 0, second.output);
  });

  /** Bazel's message when GetCapabilities says update_enabled: false and it was asked to upload. */
  const NOT_AUTHORIZED = /not authorized to write local results to the remote cache/;
  const readOnly = (token?: string) => [...cacheFlags(token), '--noremote_upload_local_results'];

  test('without a token (--anonymous read) Bazel is told it may not write, reads the cache, and writes nothing', () => {
    const directory = workspace('anonymous', 'built without a token');
    const refused = buildBanner(directory, cacheFlags());
    assert.notEqual(refused.status, 0, refused.output);
    assert.match(refused.output, NOT_AUTHORIZED);

    const hits = buildBanner(workspace('anonymous-hit', 'written by ci'), readOnly());
    assert.equal(hits.status, 0, hits.output);
    assert.equal(processSummary(hits.output)['remote cache hit'], 1, hits.output);
    const local = buildBanner(directory, readOnly());
    assert.equal(local.status, 0, local.output);
    assert.equal(locallyExecuted(local.output), 1, local.output);
    const after = cleanBuild(directory, cacheFlags(TOKENS.ci));
    assert.equal(after.status, 0, after.output);
    assert.equal(locallyExecuted(after.output), 1, `the anonymous result must not be in the cache: ${after.output}`);
  });

  test('a read-only token reads the cache, and UpdateActionResult and uploads with it are PERMISSION_DENIED', async () => {
    const directory = workspace('reader', 'built by the reader');
    const refused = buildBanner(directory, cacheFlags(TOKENS.reader));
    assert.match(refused.output, NOT_AUTHORIZED);
    const hits = buildBanner(workspace('reader-hit', 'written by ci'), readOnly(TOKENS.reader));
    assert.equal(processSummary(hits.output)['remote cache hit'], 1, hits.output);

    await withConnection(TOKENS.reader, async (connection) => {
      const blob = Buffer.from('the reader tries to upload\n');
      const uploadRefusal = await rejectsWithCode(upload(connection, blob), Code.PERMISSION_DENIED);
      assert.match(uploadRefusal.message, /"reader" does not have the "cas-write" scope/);
      const resultRefusal = await rejectsWithCode(writeResult(connection, blob), Code.PERMISSION_DENIED);
      assert.match(resultRefusal.message, /"reader" does not have the "ac-write" scope/);
    });
    assert.equal(await casHolds('the reader tries to upload\n'), false);
  });

  test('a cas-write-only token uploads blobs, and its UpdateActionResult is PERMISSION_DENIED', async () => {
    const blob = Buffer.from('the uploader uploads\n');
    await withConnection(TOKENS.uploader, async (connection) => {
      const response = await upload(connection, blob);
      assert.equal(response.responses[0]?.status?.code, 0);
      const refusal = await rejectsWithCode(writeResult(connection, blob), Code.PERMISSION_DENIED);
      assert.match(refusal.message, /"uploader" does not have the "ac-write" scope/);
    });
    assert.equal(await casHolds('the uploader uploads\n'), true);
    await withConnection(TOKENS.ci, async (connection) => {
      await rejectsWithCode(
        unary((done) =>
          connection.actionCache.getActionResult(
            GetActionResultRequest.fromPartial({ actionDigest: digestOf(blob), inlineStdout: false }),
            done,
          ),
        ),
        Code.NOT_FOUND,
        'the refused result is not in the action cache',
      );
    });
  });

  test('a standalone granary worker with a token file runs Bazel’s remote actions', async () => {
    worker = await farm.startWorker({ name: 'worker', slots: 2, flags: ['--token-file', tokenFile('worker')] });
    const directory = workspace('remote', 'run on the worker');
    const outputRoot = join(directory, '..', 'remote-root');
    const flags = [
      `--remote_executor=${farm.url}`,
      `--remote_header=Authorization=Bearer ${TOKENS.ci}`,
      '--spawn_strategy=remote',
      '--remote_timeout=120',
      '//:banner',
    ];
    // Asynchronous, so the worker's log is read while Bazel runs.
    const run = await bazelAsync(directory, outputRoot, 'build', flags);
    assert.equal(run.status, 0, `${run.output}\n--- worker ---\n${worker.output()}`);
    assert.equal(processSummary(run.output).remote, 1, run.output);
    assert.match(worker.output(), /executing [0-9a-f]{64}\/\d+/);

    const readerRun = await bazelAsync(directory, `${outputRoot}-reader`, 'build', [
      ...flags.slice(0, 1),
      `--remote_header=Authorization=Bearer ${TOKENS.reader}`,
      ...flags.slice(2),
      '--noremote_upload_local_results',
      '--noremote_accept_cached',
    ]);
    assert.notEqual(readerRun.status, 0, readerRun.output);
    assert.match(readerRun.output, /PERMISSION_DENIED|not have the "execute" scope|remote execution/i);
  });

  test('granary push-dir uses --token-file; tokens added to the access file work after SIGHUP', async () => {
    const tree = join(scratch, 'tree');
    mkdirSync(tree);
    writeFileSync(join(tree, 'file.txt'), 'pushed with a token\n');
    const pushDir = (token: keyof typeof TOKENS) =>
      spawnSync(
        process.execPath,
        [
          GRANARY_BIN,
          'push-dir',
          tree,
          '--uri',
          'https://artifacts.example/secured-tree',
          '--remote',
          farm.url,
          '--token-file',
          tokenFile(token),
        ],
        { encoding: 'utf8' },
      );
    const pushed = pushDir('ci');
    assert.equal(pushed.status, 0, pushed.stderr);
    const refused = pushDir('reader');
    assert.notEqual(refused.status, 0);
    assert.match(refused.stderr, /does not have the "(cas-write|asset-write)" scope/);
    const unknown = pushDir('later');
    assert.notEqual(unknown.status, 0);
    assert.match(unknown.stderr, /unknown token/);

    writeAccessFile([
      '- name: later',
      `  token: ${TOKENS.later}`,
      '  scopes: [read, cas-write, asset-write]',
      '  instances: ["*"]',
    ]);
    farm.server.process.kill('SIGHUP');
    const deadline = Date.now() + 30_000;
    while (!/SIGHUP: reloaded 5 entries/.test(farm.server.output())) {
      assert.ok(Date.now() < deadline, farm.server.output());
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const later = pushDir('later');
    assert.equal(later.status, 0, later.stderr);
  });
});
