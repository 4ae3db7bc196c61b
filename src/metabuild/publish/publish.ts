/**
 * Publishing an element's artifact under a URI, for consumers that speak the
 * Remote Asset API, Bazel's remote downloader above all: the artifact becomes a
 * deterministic tarball blob, a provenance record becomes a second blob, and the
 * URI is pushed to the tarball under every qualifier set a client will ask with
 * (Fetch matches qualifier sets exactly), and to the record under
 * `resource_type=application/vnd.in-toto+json`. Each asset references the
 * other blob, so the two stay in the CAS together.
 */
import { createHash } from 'node:crypto';
import { type AssetService, type Qualifier, sha256Sri } from '../../client/remoteAsset.js';
import { backgroundContext } from '../../context/requestContext.js';
import { type Digest, formatDigest } from '../../digest/digest.js';
import type { PlatformProperty } from '../../execution/types.js';
import { type BlobStore, getBuffer, putBuffer, putChunks } from '../../storage/blobStore.js';
import { listTree } from '../../tree/list.js';
import type { PlannedElement } from '../builder.js';
import {
  PROVENANCE_MEDIA_TYPE,
  type ProvenanceStatement,
  provenanceStatement,
  serializeProvenance,
} from './provenance.js';
import { treeEntries, writeTar } from './tarWriter.js';

export const TAR_MEDIA_TYPE = 'application/x-tar';

/** The tarball's qualifier sets: plain, typed, and what Bazel's downloader sends (see below). */
export function tarballQualifierSets(uri: string, sha256: string): Qualifier[][] {
  const sri = { name: 'checksum.sri', value: sha256Sri(sha256) };
  return [
    [],
    [{ name: 'resource_type', value: TAR_MEDIA_TYPE }],
    // Bazel up to 7.0 (4.2.3 included): http_archive with sha256 and no canonical_id.
    [sri],
    // Bazel 7.1 and later default canonical_id to the URLs joined by spaces.
    [{ name: 'bazel.canonical_id', value: uri }, sri],
  ];
}

/** The qualifiers the provenance record of URI is pushed and fetched with. */
export const PROVENANCE_QUALIFIERS: readonly Qualifier[] = [{ name: 'resource_type', value: PROVENANCE_MEDIA_TYPE }];

/** The tarball's file name: the URI's last path segment when it has one, else ELEMENT.tar. */
export function tarballName(uri: string, element: string): string {
  const path = uri.replace(/[?#].*$/, '').replace(/^[a-zA-Z][a-zA-Z0-9+.-]*:(\/\/[^/]*)?/, '');
  const last = path.split('/').filter(Boolean).pop();
  return last && /\.[A-Za-z0-9]+$/.test(last) ? last : `${element.replace(/\.bst$/, '').replace(/\//g, '-')}.tar`;
}

/** A Bazel repository name for an element: "libs/foo.bst" -> "foo". */
export function repositoryName(element: string): string {
  const base =
    element
      .replace(/\.bst$/, '')
      .split('/')
      .pop() ?? element;
  const name = base.replace(/[^A-Za-z0-9_]/g, '_');
  return /^[A-Za-z]/.test(name) ? name : `_${name}`;
}

export interface PublishInput {
  project: { name: string; aliases: Readonly<Record<string, string>> };
  /** The plan of the element: its dependencies first, the element last, all built. */
  plan: readonly PlannedElement[];
  uri: string;
  cas: BlobStore;
  asset: AssetService;
  builderId: string;
  instanceName: string;
  platform: PlatformProperty[];
  version?: string;
}

export interface PublishResult {
  uri: string;
  name: string;
  sha256: string;
  tarball: Digest;
  provenance: Digest;
  artifactRoot: Digest;
  statement: ProvenanceStatement;
  /** The http_archive rule to paste into a WORKSPACE. */
  snippet: string;
}

/** The digest of the artifact's tarball, computed by streaming it once. */
export async function tarballDigest(cas: BlobStore, root: Digest): Promise<Digest> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of writeTar(treeEntries(cas, root))) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { hash: hash.digest('hex'), sizeBytes: size };
}

export async function publish(input: PublishInput): Promise<PublishResult> {
  const target = input.plan.at(-1);
  if (!target?.artifact) throw new Error(`${target?.element.name ?? 'the element'} is not built`);
  const root = target.artifact.root;
  const { cas, asset, uri } = input;

  const tarball = await tarballDigest(cas, root);
  if ((await cas.findMissing(backgroundContext(), [tarball])).length > 0) {
    await putChunks(backgroundContext(), cas, tarball, writeTar(treeEntries(cas, root)));
  }
  const name = tarballName(uri, target.element.name);
  const statement = provenanceStatement({
    project: input.project,
    target,
    closure: input.plan,
    uri,
    tarball: { name, digest: tarball },
    builderId: input.builderId,
    instanceName: input.instanceName,
    platform: input.platform,
    version: input.version,
  });
  const record = serializeProvenance(statement);
  const provenance: Digest = { hash: createHash('sha256').update(record).digest('hex'), sizeBytes: record.length };
  await putBuffer(backgroundContext(), cas, provenance, record);

  for (const qualifiers of tarballQualifierSets(uri, tarball.hash)) {
    await asset.pushBlob([uri], tarball, { qualifiers, referencesBlobs: [provenance] });
  }
  await asset.pushBlob([uri], provenance, { qualifiers: PROVENANCE_QUALIFIERS, referencesBlobs: [tarball] });

  const snippet = httpArchiveSnippet({
    name: repositoryName(target.element.name),
    uri,
    sha256: tarball.hash,
    files: (await listTree(backgroundContext(), cas, root)).filter((e) => e.kind !== 'directory').map((e) => e.path),
  });
  return { uri, name, sha256: tarball.hash, tarball, provenance, artifactRoot: root, statement, snippet };
}

/** Reads the provenance record published for URI; undefined when there is none. */
export async function fetchProvenance(
  asset: AssetService,
  cas: BlobStore,
  uri: string,
): Promise<{ digest: Digest; data: Buffer } | undefined> {
  const found = await asset.fetchBlob([uri], PROVENANCE_QUALIFIERS);
  if (!found) return undefined;
  const data = await getBuffer(backgroundContext(), cas, found.digest);
  if (!data) throw new Error(`the provenance record ${formatDigest(found.digest)} of ${uri} is missing from the CAS`);
  return { digest: found.digest, data };
}

/**
 * An http_archive rule for the tarball, with a build file hint: a filegroup of
 * everything, and when the artifact holds static libraries, a cc_library over
 * them and the headers under usr/include.
 */
export function httpArchiveSnippet(options: {
  name: string;
  uri: string;
  sha256: string;
  files: readonly string[];
}): string {
  const staticLibraries = options.files.filter((f) => /(^|\/)lib\/(.*\/)?lib[^/]+\.a$/.test(f)).sort();
  const headers = options.files.some((f) => f.startsWith('usr/include/'));
  const build: string[] = [];
  if (staticLibraries.length > 0) {
    build.push(
      'cc_library(',
      `    name = "${options.name}",`,
      `    srcs = [${staticLibraries.map((f) => JSON.stringify(f)).join(', ')}],`,
      ...(headers ? ['    hdrs = glob(["usr/include/**"]),', '    strip_include_prefix = "usr/include",'] : []),
      '    visibility = ["//visibility:public"],',
      ')',
    );
  }
  build.push(
    'filegroup(',
    '    name = "files",',
    '    srcs = glob(["**"], exclude = ["BUILD", "BUILD.bazel", "WORKSPACE", "WORKSPACE.bazel"]),',
    '    visibility = ["//visibility:public"],',
    ')',
  );
  return [
    'load("@bazel_tools//tools/build_defs/repo:http.bzl", "http_archive")',
    '',
    'http_archive(',
    `    name = "${options.name}",`,
    `    urls = [${JSON.stringify(options.uri)}],`,
    `    sha256 = "${options.sha256}",`,
    '    build_file_content = """',
    ...build,
    '""",',
    ')',
  ].join('\n');
}
