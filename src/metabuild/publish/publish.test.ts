import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, describe, test } from 'node:test';
import { removeProjects, writeProject } from '../../../test/support/project.js';
import { MemoryAssetService } from '../../../test/support/remoteAssetService.js';
import { asksForPushedRecord } from '../../asset/qualifiers.js';
import { sha256Sri } from '../../client/remoteAsset.js';
import { backgroundContext } from '../../context/requestContext.js';
import { type Digest, digestOf, formatDigest } from '../../digest/digest.js';
import { getBuffer } from '../../storage/blobStore.js';
import { MemoryBlobStore } from '../../storage/memoryBlobStore.js';
import { treeFromEntries } from '../../tree/editor.js';
import type { PlannedElement } from '../builder.js';
import { loadProject } from '../project/index.js';
import { sourcesKey } from '../sources/index.js';
import {
  BUILD_TYPE,
  type ProvenanceStatement,
  parseProvenance,
  SLSA_PROVENANCE_V1,
  STATEMENT_TYPE,
} from './provenance.js';
import {
  fetchProvenance,
  httpArchiveSnippet,
  PROVENANCE_QUALIFIERS,
  publish,
  repositoryName,
  tarballName,
} from './publish.js';
import { artifactTarball } from './tarWriter.js';

const requestContext = backgroundContext();

const URI = 'https://artifacts.invalid/libgreet.tar';
const TAR_REF = 'a'.repeat(64);

async function fixture() {
  const dir = await writeProject({
    'project.conf': 'name: demo\nelement-path: elements\naliases:\n  mirror: https://mirror.invalid/\n',
    'elements/base.bst': `kind: import\nsources:\n- kind: tar\n  url: mirror:base.tar\n  ref: ${TAR_REF}\n  base-dir: ''\n`,
    'elements/libgreet.bst': 'kind: manual\nbuild-depends:\n- base.bst\nsources:\n- kind: local\n  path: files\n',
    'files/greet.c': 'int x;\n',
  });
  const project = await loadProject(dir);
  const cas = new MemoryBlobStore();
  const context = { projectDir: dir, aliases: project.config.aliases, cas, cacheDir: `${dir}/.cache` };
  const plan: PlannedElement[] = [];
  const baseRoot = await treeFromEntries(requestContext, cas, [
    { path: 'bin/sh', kind: 'file', data: 'sh', executable: true },
  ]);
  const libRoot = await treeFromEntries(requestContext, cas, [
    { path: 'usr/lib/libgreet.a', kind: 'file', data: '!<arch>\n' },
    { path: 'usr/include/greet.h', kind: 'file', data: 'const char *greet_message(void);\n' },
  ]);
  const action = digestOf('an Action');
  for (const [name, key, artifact] of [
    ['base.bst', 'b'.repeat(64), { root: baseRoot }],
    ['libgreet.bst', 'c'.repeat(64), { root: libRoot, actionDigest: action, stdout: digestOf('log') }],
  ] as const) {
    const element = project.elements.get(name);
    assert.ok(element);
    const declarations = element.sources.map((s) => ({ config: { kind: s.kind, ...s.config }, location: s.file }));
    plan.push({ element, key, artifact, sources: await sourcesKey(declarations, context) });
  }
  return { project, cas, plan, libRoot, baseRoot, action };
}

describe('publishing an artifact', () => {
  after(removeProjects);

  test('stores the tarball and the provenance, and pushes the URI under every qualifier set a client asks with', async () => {
    const { project, cas, plan, libRoot, baseRoot, action } = await fixture();
    const asset = new MemoryAssetService();
    const result = await publish({
      project: project.config,
      plan,
      uri: URI,
      cas,
      asset,
      builderId: 'grpc://127.0.0.1:8980',
      instanceName: '',
      platform: [{ name: 'OSFamily', value: 'linux' }],
    });
    const expected = await artifactTarball(cas, libRoot);
    assert.equal(result.sha256, expected.sha256);
    assert.ok(
      (await getBuffer(backgroundContext(), cas, result.tarball))?.equals(expected.data),
      'the tarball blob is in the CAS',
    );
    assert.equal(result.name, 'libgreet.tar');

    const sri = `sha256-${Buffer.from(expected.sha256, 'hex').toString('base64')}`;
    assert.equal(sha256Sri(expected.sha256), sri);
    const tarballPushes = asset.pushes.filter((p) => formatDigest(p.digest) === formatDigest(result.tarball));
    assert.deepEqual(
      tarballPushes.map((p) => p.options.qualifiers),
      [
        [],
        [{ name: 'resource_type', value: 'application/x-tar' }],
        [{ name: 'checksum.sri', value: sri }],
        [
          { name: 'bazel.canonical_id', value: URI },
          { name: 'checksum.sri', value: sri },
        ],
      ],
    );
    for (const push of tarballPushes) {
      assert.deepEqual(push.uris, [URI]);
      assert.deepEqual(push.options.referencesBlobs, [result.provenance]);
    }
    // What Bazel 4.2.3 asks for an http_archive with sha256:
    assert.equal(
      formatDigest((await asset.fetchBlob([URI], [{ name: 'checksum.sri', value: sri }]))?.digest as Digest),
      formatDigest(result.tarball),
    );

    const found = await fetchProvenance(asset, cas, URI);
    assert.ok(found);
    assert.equal(formatDigest(found.digest), formatDigest(result.provenance));
    const provenancePush = asset.pushes.find((p) => formatDigest(p.digest) === formatDigest(result.provenance));
    assert.deepEqual(provenancePush?.options.qualifiers, PROVENANCE_QUALIFIERS);
    // A Granary server answers this from pushed records only, never by downloading the URI.
    assert.ok(asksForPushedRecord(PROVENANCE_QUALIFIERS));
    assert.deepEqual(provenancePush?.options.referencesBlobs, [result.tarball]);

    const statement = JSON.parse(found.data.toString()) as ProvenanceStatement;
    assert.equal(statement._type, STATEMENT_TYPE);
    assert.equal(statement.predicateType, SLSA_PROVENANCE_V1);
    assert.deepEqual(statement.subject, [{ name: 'libgreet.tar', uri: URI, digest: { sha256: expected.sha256 } }]);
    const definition = statement.predicate.buildDefinition;
    assert.equal(definition.buildType, BUILD_TYPE);
    assert.deepEqual(definition.externalParameters, {
      project: 'demo',
      element: 'libgreet.bst',
      cacheKey: 'c'.repeat(64),
      uri: URI,
    });
    const byName = new Map(definition.resolvedDependencies.map((d) => [d.name, d]));
    // Sources with their refs: the tar source's sha256 and translated URL, the local source's tree digest.
    assert.deepEqual(byName.get('base.bst#sources[0]')?.digest, { sha256: TAR_REF });
    assert.equal(byName.get('base.bst#sources[0]')?.uri, 'https://mirror.invalid/base.tar');
    assert.match(String(byName.get('libgreet.bst#sources[0]')?.digest?.sha256), /^[0-9a-f]{64}$/);
    assert.equal(byName.get('libgreet.bst#sources[0]')?.annotations?.kind, 'local');
    // Dependencies with their keys and artifact digests.
    assert.deepEqual(byName.get('base.bst')?.digest, { sha256: baseRoot.hash });
    assert.equal(byName.get('base.bst')?.annotations?.cacheKey, 'b'.repeat(64));
    assert.equal(byName.get('base.bst')?.annotations?.dependency, 'build');
    assert.equal(byName.get('base.bst')?.annotations?.artifactRoot, formatDigest(baseRoot));
    // The Actions that built them.
    const byproducts = statement.predicate.runDetails.byproducts;
    assert.deepEqual(byproducts.find((b) => b.name === 'action:libgreet.bst')?.digest, { sha256: action.hash });
    assert.equal(byproducts.find((b) => b.name === 'artifact')?.annotations?.artifactRoot, formatDigest(libRoot));
    assert.equal(statement.predicate.runDetails.builder.id, 'grpc://127.0.0.1:8980');

    const summary = parseProvenance(found.data);
    assert.equal(summary.element, 'libgreet.bst');
    assert.equal(summary.cacheKey, 'c'.repeat(64));
    assert.equal(formatDigest(summary.artifactRoot), formatDigest(libRoot));
    assert.equal(summary.subject.sha256, expected.sha256);
    assert.equal(summary.dependencies.get('base.bst')?.cacheKey, 'b'.repeat(64));

    assert.match(result.snippet, new RegExp(`sha256 = "${expected.sha256}"`));
    assert.match(result.snippet, /srcs = \["usr\/lib\/libgreet\.a"\]/);
  });

  test('publishing the same artifact again gives the same tarball and the same record', async () => {
    const { project, cas, plan } = await fixture();
    const run = () =>
      publish({
        project: project.config,
        plan,
        uri: URI,
        cas,
        asset: new MemoryAssetService(),
        builderId: 'b',
        instanceName: '',
        platform: [],
      });
    const [a, b] = [await run(), await run()];
    assert.equal(a.sha256, b.sha256);
    assert.equal(formatDigest(a.provenance), formatDigest(b.provenance));
    assert.equal(
      createHash('sha256')
        .update((await getBuffer(backgroundContext(), cas, a.provenance)) as Buffer)
        .digest('hex'),
      a.provenance.hash,
    );
  });

  test('refuses an element that is not built', async () => {
    const { project, cas, plan } = await fixture();
    const unbuilt = plan.map((p) => ({ ...p, artifact: undefined }));
    await assert.rejects(
      publish({
        project: project.config,
        plan: unbuilt,
        uri: URI,
        cas,
        asset: new MemoryAssetService(),
        builderId: 'b',
        instanceName: '',
        platform: [],
      }),
      /libgreet\.bst is not built/,
    );
  });

  test('names: the tarball after the URI, the repository after the element', () => {
    assert.equal(tarballName('https://a.invalid/x/libgreet.tar', 'libgreet.bst'), 'libgreet.tar');
    assert.equal(tarballName('https://a.invalid/x/libgreet.tar?v=1#frag', 'libgreet.bst'), 'libgreet.tar');
    assert.equal(tarballName('urn:granary:thing', 'libs/foo.bst'), 'libs-foo.tar');
    assert.equal(tarballName('https://a.invalid/', 'foo.bst'), 'foo.tar');
    assert.equal(repositoryName('libs/lib-greet.bst'), 'lib_greet');
    assert.equal(repositoryName('3d.bst'), '_3d');
  });

  test('the http_archive snippet offers a filegroup always, and a cc_library when there are static libraries', () => {
    const plain = httpArchiveSnippet({ name: 'data', uri: URI, sha256: 'f'.repeat(64), files: ['share/a.txt'] });
    assert.doesNotMatch(plain, /cc_library/);
    assert.match(plain, /filegroup\(/);
    assert.match(plain, /urls = \["https:\/\/artifacts\.invalid\/libgreet\.tar"\]/);
  });
});
