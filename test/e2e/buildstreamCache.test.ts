/**
 * BuildStream 1.6.8 (Debian `buildstream`) uses a real `granary serve` as its
 * artifact cache: it probes the server (GetCapabilities, empty BatchReadBlobs,
 * empty Fetch.FetchDirectory and, when pushing, empty BatchUpdateBlobs and
 * Push.PushDirectory, expecting INVALID_ARGUMENT to pick Remote Asset mode),
 * pushes an artifact (blobs through BatchUpdateBlobs and ByteStream, one upload
 * UUID for every write, then PushDirectory), and after its local cache is wiped
 * and the server restarted, pulls it back (FetchDirectory, BatchReadBlobs,
 * ByteStream reads) and checks it out unchanged.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readlinkSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { assetCalls } from '../support/asset.js';
import { requireCommand } from '../support/commands.js';
import { useFarm } from '../support/farm.js';
import { removeQuietly } from '../support/scratch.js';

const skip = requireCommand('bst');

describe('BuildStream 1.6.8 with granary serve as its artifact cache', { skip, timeout: 5 * 60_000 }, () => {
  const farm = useFarm({ name: 'buildstream', embeddedWorkers: 0 });
  let scratch: string;
  let project: string;
  const big = randomBytes(2 * 1024 * 1024 + 17);
  const big2 = randomBytes(1536 * 1024);

  before(() => {
    scratch = farm.scratch;
    project = join(scratch, 'project');
    const files = join(project, 'files');
    mkdirSync(join(files, 'sub', 'deeper'), { recursive: true });
    mkdirSync(join(project, 'elements'));
    writeFileSync(join(project, 'project.conf'), 'name: granarytest\nelement-path: elements\n');
    writeFileSync(join(project, 'elements', 'hello.bst'), 'kind: import\nsources:\n- kind: local\n  path: files\n');
    writeFileSync(join(files, 'hello.txt'), 'hello from BuildStream\n');
    writeFileSync(join(files, 'sub', 'deeper', 'nested.txt'), 'nested\n');
    // Larger than BuildStream's 1 MiB batch limit: each goes through its own
    // ByteStream write, both under the same upload UUID.
    writeFileSync(join(files, 'big.bin'), big);
    writeFileSync(join(files, 'sub', 'big2.bin'), big2);
    writeFileSync(join(files, 'run.sh'), '#!/bin/sh\necho run\n');
    chmodSync(join(files, 'run.sh'), 0o755);
    symlinkSync('sub/deeper/nested.txt', join(files, 'link'));
    writeFileSync(join(scratch, 'local.conf'), '{}\n');
    writeRemoteConfig();
  });

  /** BuildStream 1.6 speaks gRPC to http:// URLs. */
  function writeRemoteConfig(): void {
    writeFileSync(join(scratch, 'remote.conf'), `artifacts:\n  url: ${farm.httpUrl}\n  push: true\n`);
  }

  /** Runs bst; returns stdout and the combined output. */
  function bst(config: string, args: string[]): { stdout: string; output: string } {
    const result = spawnSync('bst', ['--no-interactive', '--no-colors', '-c', join(scratch, config), ...args], {
      cwd: project,
      encoding: 'utf8',
      env: {
        PATH: '/usr/bin:/bin',
        HOME: scratch,
        XDG_CACHE_HOME: join(scratch, 'cache'),
        XDG_CONFIG_HOME: join(scratch, 'config'),
        XDG_DATA_HOME: join(scratch, 'share'),
        LANG: 'C.UTF-8',
      },
      timeout: 120_000,
    });
    const output = `${result.stdout}${result.stderr}`;
    assert.equal(result.status, 0, `bst ${args.join(' ')} failed:\n${output}\n--- granary:\n${farm.server.output()}`);
    return { stdout: result.stdout, output };
  }

  test('bst push, then (cache wiped, server restarted) bst pull and checkout give back the same files', async () => {
    bst('local.conf', ['build', 'hello.bst']);
    const key = bst('local.conf', ['show', '--deps', 'none', '--format', '%{full-key}', 'hello.bst']).stdout.trim();
    assert.match(key, /^[0-9a-f]{64}$/);

    const pushed = bst('remote.conf', ['push', 'hello.bst']).output;
    assert.match(pushed, /Pushed artifact/, pushed);

    // The artifact is a Remote Asset directory under BuildStream's URN.
    const fetched = await assetCalls(farm.connect()).fetchDirectory({
      uris: [`urn:fdc:buildstream.build:2020:v1:granarytest/hello/${key}`],
    });
    assert.ok(fetched.rootDirectoryDigest?.hash);

    // A second push finds the artifact on the server and sends nothing.
    const again = bst('remote.conf', ['push', 'hello.bst']).output;
    assert.doesNotMatch(again, /Pushed artifact/, again);

    assert.equal(await farm.stopServer(), 0, farm.server.output());
    await farm.startServer();
    removeQuietly(join(scratch, 'cache', 'buildstream', 'artifacts'));

    const pulled = bst('remote.conf', ['pull', 'hello.bst']).output;
    assert.match(pulled, /Pulled artifact/, pulled);
    const out = join(scratch, 'checkout');
    bst('local.conf', ['checkout', '--no-integrate', 'hello.bst', out]);
    assert.equal(readFileSync(join(out, 'hello.txt'), 'utf8'), 'hello from BuildStream\n');
    assert.equal(readFileSync(join(out, 'sub', 'deeper', 'nested.txt'), 'utf8'), 'nested\n');
    assert.ok(readFileSync(join(out, 'big.bin')).equals(big));
    assert.ok(readFileSync(join(out, 'sub', 'big2.bin')).equals(big2));
    assert.equal(readFileSync(join(out, 'run.sh'), 'utf8'), '#!/bin/sh\necho run\n');
    assert.ok((statSync(join(out, 'run.sh')).mode & 0o100) !== 0, 'run.sh stays executable');
    assert.ok(lstatSync(join(out, 'link')).isSymbolicLink());
    assert.equal(readlinkSync(join(out, 'link')), 'sub/deeper/nested.txt');
  });
});
