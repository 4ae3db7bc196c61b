import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { linkableDisk } from '../storage/storageConfig.js';
import { ConfigError } from '../util/configValues.js';
import { flag } from './args.js';
import { formatConfig } from './configFile.js';
import { SERVE_FLAGS } from './serve.js';
import { embeddedWorkerCacheBytes, resolveServeConfiguration, serveDocument } from './serveConfig.js';
import { resolveWorkerArgs } from './worker.js';

const directory = mkdtempSync(join(tmpdir(), 'granary-config-'));
after(() => rmSync(directory, { recursive: true, force: true }));

let files = 0;
function configFile(text: string): string {
  const file = join(directory, `config-${files++}.yaml`);
  writeFileSync(file, text);
  return file;
}

function configError(run: () => unknown): ConfigError {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${error}`);
    return error;
  }
  assert.fail('the configuration was accepted');
}

describe('serve configuration', () => {
  it('without flags builds a verified CAS (segments for small blobs, read-only files for the rest), two small disks, and leaves the embedded worker its slice', () => {
    const { storage, args } = resolveServeConfiguration(['--workers', '2'], SERVE_FLAGS);
    const data = resolve('./.granary');
    const tenGiB = 10 * 1024 ** 3;
    const slice = Math.floor(tenGiB / 50);
    const workerCache = embeddedWorkerCacheBytes(tenGiB);
    assert.equal(workerCache, tenGiB / 10);
    const cas = tenGiB - 2 * slice - workerCache;
    const small = Math.floor(cas / 4);
    assert.deepEqual(storage, {
      cas: {
        verifying: {
          backend: {
            sizeRouting: {
              maxSmallBlobBytes: 64 * 1024,
              small: { segments: { path: join(data, 'cas-small'), maxSizeBytes: small } },
              large: { disk: { path: join(data, 'cas'), maxSizeBytes: cas - small, readOnlyBlobs: true } },
            },
          },
        },
      },
      actionCache: { disk: { path: join(data, 'ac'), maxSizeBytes: slice } },
      assets: { disk: { path: join(data, 'asset'), maxSizeBytes: slice } },
    });
    assert.deepEqual(linkableDisk(storage.cas), { directory: join(data, 'cas'), smallBlobBytes: 64 * 1024 });
    assert.equal(flag(args, 'listen'), '127.0.0.1:8980');
  });

  it("gives the CAS the embedded worker's slice when there is no embedded worker", () => {
    const { storage } = resolveServeConfiguration(['--workers', '0', '--max-size', '1GiB'], SERVE_FLAGS);
    const oneGiB = 1024 ** 3;
    type Routed = {
      verifying: { backend: { sizeRouting: Record<'small' | 'large', Record<string, { maxSizeBytes: number }>> } };
    };
    const { small, large } = (storage.cas as Routed).verifying.backend.sizeRouting;
    assert.equal(
      (small.segments?.maxSizeBytes ?? 0) + (large.disk?.maxSizeBytes ?? 0),
      oneGiB - 2 * Math.floor(oneGiB / 50),
    );
  });

  it('bounds the embedded worker cache to a tenth of --max-size, at most 2 GiB', () => {
    assert.equal(embeddedWorkerCacheBytes(1000), 100);
    assert.equal(embeddedWorkerCacheBytes(100 * 1024 ** 3), 2 * 1024 ** 3);
    assert.equal(embeddedWorkerCacheBytes(5), 1);
  });

  it('takes settings from the file, lets flags override them, and fills the rest with defaults', () => {
    const file = configFile(
      [
        'listen: 0.0.0.0:9000',
        'scheduler:',
        '  workerTimeout: 1m',
        '  platformMatch: { cores: minimum, OSFamily: exact }',
        'embeddedWorker:',
        '  slots: 3',
        '  platform: [pool=large]',
      ].join('\n'),
    );
    const { args } = resolveServeConfiguration(['--config', file, '--listen', '127.0.0.1:9001'], SERVE_FLAGS);
    assert.equal(flag(args, 'listen'), '127.0.0.1:9001');
    assert.equal(flag(args, 'worker-timeout'), '1m');
    assert.deepEqual(args.flags.get('platform-match'), ['cores=minimum', 'OSFamily=exact']);
    assert.equal(flag(args, 'workers'), '3');
    assert.deepEqual(args.flags.get('worker-platform'), ['pool=large']);
    assert.equal(flag(args, 'sandbox'), 'auto');
  });

  it('uses the storage graphs of the file, and --storage-node over its CAS', () => {
    const file = configFile(
      [
        'storage:',
        '  cas:',
        '    sharding:',
        '      shards:',
        '        - { weight: 1, backend: { disk: { path: /srv/a, maxSizeBytes: 1GiB } } }',
        '        - { weight: 2, backend: { disk: { path: /srv/b, maxSizeBytes: 2GiB } } }',
        '  actionCache: { memory: { maxSizeBytes: 64MiB } }',
      ].join('\n'),
    );
    const { storage } = resolveServeConfiguration(['--config', file], SERVE_FLAGS);
    assert.deepEqual(storage.cas, {
      sharding: {
        shards: [
          { weight: 1, backend: { disk: { path: '/srv/a', maxSizeBytes: 1024 ** 3 } } },
          { weight: 2, backend: { disk: { path: '/srv/b', maxSizeBytes: 2 * 1024 ** 3 } } },
        ],
      },
    });
    assert.deepEqual(storage.actionCache, { memory: { maxSizeBytes: 64 * 1024 ** 2 } });
    assert.equal(storage.assets && 'disk' in storage.assets, true, 'assets keep their default');
    const remote = resolveServeConfiguration(['--config', file, '--storage-node', 'grpc://node:8980'], SERVE_FLAGS);
    assert.deepEqual(remote.storage.cas, {
      replicated: { replicas: 1, nodes: [{ backend: { grpc: { target: 'grpc://node:8980' } } }] },
    });
    const replicated = resolveServeConfiguration(
      ['--storage-node', 'grpc://a:1', '--storage-node', 'grpc://b:1', '--storage-node', 'grpc://c:1'],
      SERVE_FLAGS,
    );
    assert.equal('replicated' in replicated.storage.cas && replicated.storage.cas.replicated.replicas, 2);
  });

  it('gives every --storage-node the --storage-node-tls-* files, only for grpcs:// nodes and a whole key pair', () => {
    const tls = [
      '--storage-node-tls-ca',
      '/ca.pem',
      '--storage-node-tls-cert',
      '/f.pem',
      '--storage-node-tls-key',
      '/f.key',
    ];
    const secured = resolveServeConfiguration(
      ['--storage-node', 'grpcs://a:1', '--storage-node', 'grpcs://b:1', ...tls],
      SERVE_FLAGS,
    );
    const files = { caFile: '/ca.pem', certFile: '/f.pem', keyFile: '/f.key' };
    assert.deepEqual(secured.storage.cas, {
      replicated: {
        replicas: 2,
        nodes: [
          { backend: { grpc: { target: 'grpcs://a:1', tls: files } } },
          { backend: { grpc: { target: 'grpcs://b:1', tls: files } } },
        ],
      },
    });
    assert.throws(
      () => resolveServeConfiguration(['--storage-node', 'grpc://a:1', ...tls], SERVE_FLAGS),
      /need grpcs:\/\/ storage nodes, got grpc:\/\/a:1/,
    );
    assert.throws(
      () =>
        resolveServeConfiguration(['--storage-node', 'grpcs://a:1', '--storage-node-tls-cert', '/f.pem'], SERVE_FLAGS),
      /--storage-node-tls-cert and --storage-node-tls-key go together/,
    );
  });

  it('names the path of a misspelt setting, a bad storage key and a bad value', () => {
    const misspelt = configError(() =>
      resolveServeConfiguration(['--config', configFile('scheduler:\n  workerTimeot: 1m\n')], SERVE_FLAGS),
    );
    assert.equal(misspelt.path, 'scheduler.workerTimeot');
    assert.match(misspelt.message, /unknown setting \(expected one of workerTimeout, platformMatch\)/);

    const storage = configError(() =>
      resolveServeConfiguration(
        [
          '--config',
          configFile(
            'storage:\n  cas:\n    mirrored:\n      backends: [{ memory: { maxSizeBytes: 1 } }, { disk: { path: /x } }]\n',
          ),
        ],
        SERVE_FLAGS,
      ),
    );
    assert.equal(storage.path, 'storage.cas.mirrored.backends[1].disk.maxSizeBytes');

    const notScalar = configError(() =>
      resolveServeConfiguration(['--config', configFile('listen: { host: x }\n')], SERVE_FLAGS),
    );
    assert.equal(notScalar.path, 'listen');
    assert.equal(
      configError(() => resolveServeConfiguration(['--config', configFile('scheduler: 5\n')], SERVE_FLAGS)).path,
      'scheduler',
    );
  });

  it('prints a configuration that, read back as a file, resolves to the same configuration', () => {
    const first = resolveServeConfiguration(
      [
        '--max-size',
        '2GiB',
        '--platform-match',
        'cores=minimum',
        '--worker-platform',
        'pool=a',
        '--fetch-allow',
        '10.0.0.0/8',
      ],
      SERVE_FLAGS,
    );
    const printed = formatConfig(serveDocument(first));
    assert.match(printed, /^listen: 127\.0\.0\.1:8980$/m);
    assert.match(printed, /verifying:/);
    const again = resolveServeConfiguration(['--config', configFile(printed)], SERVE_FLAGS);
    assert.equal(formatConfig(serveDocument(again)), printed);
    assert.deepEqual(again.storage, first.storage);
  });
});

describe('worker configuration', () => {
  it('takes settings from the file and lets flags override them', () => {
    const file = configFile(
      [
        'server: grpcs://farm.example:443',
        'slots: 8',
        'platform: { OSFamily: linux, pool: [a, b] }',
        'tls: { ca: /etc/ca.pem }',
      ].join('\n'),
    );
    const args = resolveWorkerArgs(['--config', file, '--slots', '2']);
    assert.equal(flag(args, 'server'), 'grpcs://farm.example:443');
    assert.equal(flag(args, 'slots'), '2');
    assert.deepEqual(args.flags.get('platform'), ['OSFamily=linux', 'pool=a', 'pool=b']);
    assert.equal(flag(args, 'tls-ca'), '/etc/ca.pem');
    assert.equal(flag(args, 'work-dir'), './.granary-worker');
    assert.equal(configError(() => resolveWorkerArgs(['--config', configFile('slot: 2\n')])).path, 'slot');
  });
});
