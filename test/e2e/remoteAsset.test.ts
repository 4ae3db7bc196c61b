/**
 * The Remote Asset downloader of a real `granary serve`: it proxies files from a
 * local HTTP origin (checksums verified, results cached, headers passed on), and
 * Bazel 4.2.3 with --experimental_remote_downloader fetches an http_archive and
 * an http_file through it, again after the origin is gone. The origin is on
 * loopback, which the downloader refuses unless opened: the server opens
 * 127.0.0.1 alone, and a redirect to another loopback address never connects.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Connection, unary } from '../../src/client/connection.js';
import { digestOf } from '../../src/digest/digest.js';
import type { FindMissingBlobsResponse } from '../../src/gen/build/bazel/remote/execution/v2/remote_execution.js';
import { Code } from '../../src/util/status.js';
import { type AssetCalls, assetCalls, type Origin, sriOf, startOrigin } from '../support/asset.js';
import { bazelAsync, remoteCacheFlags, remoteDownloaderFlags } from '../support/bazel.js';
import { bazelWorkspace } from '../support/bazelWorkspace.js';
import { requireCommand, run } from '../support/commands.js';
import { useFarm } from '../support/farm.js';
import { readResource } from '../support/grpc.js';

describe('Remote Asset downloader of granary serve', { timeout: 10 * 60_000 }, () => {
  const farm = useFarm({ name: 'remote-asset', embeddedWorkers: 0, serveFlags: ['--fetch-allow', '127.0.0.1'] });
  let scratch: string;
  let connection: Connection;
  let calls: AssetCalls;
  let origin: Origin;
  let inside: Origin;
  let tarball: Buffer;
  const file = Buffer.from('a file fetched with http_file\n');

  before(async () => {
    scratch = farm.scratch;
    const content = join(scratch, 'archive', 'pkg');
    mkdirSync(content, { recursive: true });
    writeFileSync(join(content, 'data.txt'), 'packed in a tarball\n');
    run('tar', ['-czf', join(scratch, 'pkg.tar.gz'), '-C', join(scratch, 'archive'), 'pkg'], scratch);
    tarball = readFileSync(join(scratch, 'pkg.tar.gz'));
    inside = await startOrigin({ '/secret': Buffer.from('not for clients') }, '127.0.0.2');
    origin = await startOrigin({
      '/to-inside': (response) => response.writeHead(302, { location: `${inside.url}/secret` }).end(),
      '/pkg.tar.gz': tarball,
      '/file.txt': file,
      '/private.txt': (response, request) => {
        if (request.headers['x-token'] === 'letmein') response.writeHead(200).end('private');
        else response.writeHead(403, 'Forbidden').end();
      },
    });
    connection = farm.connect();
    calls = assetCalls(connection);
  });

  after(async () => {
    await origin?.close();
    await inside?.close();
  });

  test('proxies a tarball with a verified checksum, caches it, and never stores a mismatch', async () => {
    const uri = `${origin.url}/pkg.tar.gz`;
    const wrong = await calls.fetchBlob({
      uris: [uri],
      qualifiers: [{ name: 'checksum.sri', value: sriOf(Buffer.from('not it')) }],
    });
    assert.equal(wrong.status?.code, Code.ABORTED, wrong.status?.message);
    assert.match(wrong.status?.message ?? '', /checksum mismatch/);
    const missing = await unary<FindMissingBlobsResponse>((done) =>
      connection.cas.findMissingBlobs({ instanceName: '', blobDigests: [digestOf(tarball)], digestFunction: 0 }, done),
    );
    assert.equal(missing.missingBlobDigests.length, 1, 'nothing stored after a mismatch');

    const qualifiers = [{ name: 'checksum.sri', value: sriOf(tarball) }];
    const first = await calls.fetchBlob({ uris: [uri], qualifiers });
    assert.equal(first.status?.code ?? 0, 0, first.status?.message);
    assert.deepEqual(first.blobDigest, digestOf(tarball));
    const stored = await readResource(connection, `blobs/${first.blobDigest?.hash}/${first.blobDigest?.sizeBytes}`);
    assert.ok(stored.equals(tarball));
    assert.equal(origin.count('/pkg.tar.gz'), 2);

    const second = await calls.fetchBlob({ uris: [uri], qualifiers });
    assert.deepEqual(second.blobDigest, digestOf(tarball));
    assert.equal(origin.count('/pkg.tar.gz'), 2, 'the second fetch is served without the origin');
  });

  test('refuses a redirect to a loopback address it was not opened to, never connecting to it', async () => {
    const response = await calls.fetchBlob({ uris: [`${origin.url}/to-inside`] });
    assert.equal(response.status?.code, Code.PERMISSION_DENIED, response.status?.message);
    assert.match(response.status?.message ?? '', /127\.0\.0\.2 is a loopback address, refused by default/);
    assert.equal(inside.connections(), 0);
  });

  test('passes http_header qualifiers to the origin', async () => {
    const uri = `${origin.url}/private.txt`;
    const denied = await calls.fetchBlob({ uris: [uri] });
    assert.equal(denied.status?.code, Code.PERMISSION_DENIED);
    assert.match(denied.status?.message ?? '', /403/);
    const allowed = await calls.fetchBlob({
      uris: [uri],
      qualifiers: [{ name: 'http_header:X-Token', value: 'letmein' }],
    });
    assert.equal(allowed.status?.code ?? 0, 0, allowed.status?.message);
    assert.deepEqual(allowed.blobDigest, digestOf('private'));
    assert.equal(origin.requests.at(-1)?.headers['x-token'], 'letmein');
  });

  test('Bazel 4.2.3 downloads http_archive and http_file through Granary, also with the origin gone', {
    skip: requireCommand('bazel'),
  }, async () => {
    const workspace = bazelWorkspace(4, join(scratch, 'bazel'));
    const sha256 = (data: Buffer) => digestOf(data).hash;
    writeFileSync(
      join(workspace, 'WORKSPACE'),
      `${readFileSync(join(workspace, 'WORKSPACE'), 'utf8')}
load("@bazel_tools//tools/build_defs/repo:http.bzl", "http_archive", "http_file")

http_archive(
    name = "ext_archive",
    urls = ["${origin.url}/pkg.tar.gz"],
    sha256 = "${sha256(tarball)}",
    strip_prefix = "pkg",
    build_file_content = 'exports_files(["data.txt"])',
)

http_file(
    name = "ext_file",
    urls = ["${origin.url}/file.txt"],
    sha256 = "${sha256(file)}",
    downloaded_file_path = "file.txt",
)
`,
    );
    writeFileSync(
      join(workspace, 'BUILD'),
      `${readFileSync(join(workspace, 'BUILD'), 'utf8')}
genrule(
    name = "external_files",
    srcs = ["@ext_archive//:data.txt", "@ext_file//file"],
    outs = ["external_files.txt"],
    cmd = "cat $(SRCS) > $@",
)
`,
    );
    const flags = [
      ...remoteDownloaderFlags(farm.url),
      ...remoteCacheFlags(farm.url),
      '--repository_cache=',
      '//:external_files',
    ];
    const before = { archive: origin.count('/pkg.tar.gz'), file: origin.count('/file.txt') };
    // Asynchronously: the origin runs in this process and must keep answering.
    const first = await bazelAsync(workspace, join(scratch, 'root-1'), 'build', flags);
    assert.equal(first.status, 0, first.output);
    const expected = 'packed in a tarball\na file fetched with http_file\n';
    assert.equal(readFileSync(join(workspace, 'bazel-bin', 'external_files.txt'), 'utf8'), expected);
    // The tarball was already cached by the test above; the file came from the origin once, via Granary.
    assert.equal(origin.count('/pkg.tar.gz'), before.archive, 'Bazel got the cached tarball from Granary');
    assert.equal(origin.count('/file.txt'), before.file + 1);
    const fileRequest = origin.requests.filter((r) => r.path === '/file.txt').at(-1);
    assert.doesNotMatch(String(fileRequest?.headers['user-agent']), /bazel/i, 'Granary, not Bazel, downloaded it');

    // With the origin gone, a fresh output root (no local repository cache) still fetches both.
    await origin.close();
    const second = await bazelAsync(workspace, join(scratch, 'root-2'), 'build', flags);
    assert.equal(second.status, 0, second.output);
    assert.equal(readFileSync(join(workspace, 'bazel-bin', 'external_files.txt'), 'utf8'), expected);
  });
});
