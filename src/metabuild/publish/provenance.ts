/**
 * Provenance of a published artifact: an in-toto Statement v1 whose predicate is
 * SLSA Provenance v1. It says which element of which project, at which cache key,
 * produced the tarball (the subject); which sources (with their refs) and which
 * dependency artifacts (with their keys and root digests) went in; and which
 * REAPI Actions built the element and its dependencies. It is stored as a blob in
 * the CAS next to the tarball, so anyone holding the URI can check where an
 * artifact came from and rebuild it (`granary provenance URI --rebuild`).
 */
import { type Digest, formatDigest } from '../../digest/digest.js';
import type { PlatformProperty } from '../../execution/types.js';
import type { PlannedElement } from '../builder.js';
import { CACHE_KEY_VERSION } from '../cacheKey.js';
import { type SourceKeyMaterial, translateUrl } from '../sources/index.js';

export const STATEMENT_TYPE = 'https://in-toto.io/Statement/v1';
export const SLSA_PROVENANCE_V1 = 'https://slsa.dev/provenance/v1';
/** What kind of build the record describes: one element of a BuildStream-format project, built by Granary. */
export const BUILD_TYPE = 'urn:granary:build-type:buildstream-element:v1';
/** The media type of the record, also the `resource_type` qualifier it is pushed under. */
export const PROVENANCE_MEDIA_TYPE = 'application/vnd.in-toto+json';

/** An SLSA ResourceDescriptor. */
export interface ResourceDescriptor {
  name?: string;
  uri?: string;
  digest?: Record<string, string>;
  mediaType?: string;
  annotations?: Record<string, unknown>;
}

export interface ProvenanceStatement {
  _type: typeof STATEMENT_TYPE;
  subject: ResourceDescriptor[];
  predicateType: typeof SLSA_PROVENANCE_V1;
  predicate: {
    buildDefinition: {
      buildType: string;
      externalParameters: { project: string; element: string; cacheKey: string; uri: string };
      internalParameters: { cacheKeyVersion: number; platform: PlatformProperty[]; instanceName: string };
      resolvedDependencies: ResourceDescriptor[];
    };
    runDetails: {
      builder: { id: string; version?: Record<string, string> };
      byproducts: ResourceDescriptor[];
    };
  };
}

export interface ProvenanceInput {
  project: { name: string; aliases: Readonly<Record<string, string>> };
  /** The published element. */
  target: PlannedElement;
  /** Everything planned for it (its dependencies, transitively, and itself). */
  closure: readonly PlannedElement[];
  uri: string;
  tarball: { name: string; digest: Digest };
  builderId: string;
  instanceName: string;
  platform: PlatformProperty[];
  version?: string;
}

/** How a digest names content in a ResourceDescriptor (SHA-256 digests are keyed "sha256"). */
function digestSet(digest: Digest): Record<string, string> {
  return { sha256: digest.hash };
}

function keyDigest(key: SourceKeyMaterial | undefined): string | undefined {
  const text =
    typeof key === 'string' ? key : key && typeof key === 'object' && !Array.isArray(key) ? key.digest : undefined;
  return typeof text === 'string' ? text : undefined;
}

/** The sources of one element as ResourceDescriptors, with their configs and key material. */
function sourceDescriptors(planned: PlannedElement, aliases: Readonly<Record<string, string>>): ResourceDescriptor[] {
  return planned.element.sources.map((source, index) => {
    const material = planned.sources?.[index];
    const key = material && typeof material === 'object' && !Array.isArray(material) ? material.key : undefined;
    const config = source.config as Record<string, unknown>;
    const descriptor: ResourceDescriptor = { name: `${planned.element.name}#sources[${index}]` };
    const url = typeof config.url === 'string' ? config.url : typeof config.uri === 'string' ? config.uri : undefined;
    if (url) descriptor.uri = translateUrl(url, aliases);
    const keyObject = key && typeof key === 'object' && !Array.isArray(key) ? key : undefined;
    if (source.kind === 'tar' && typeof config.ref === 'string') descriptor.digest = { sha256: config.ref };
    else if (source.kind === 'git' && typeof keyObject?.ref === 'string')
      descriptor.digest = { gitCommit: keyObject.ref };
    else {
      const text = keyDigest(key);
      const hash = text ? /^([0-9a-f]+)\/\d+$/.exec(text)?.[1] : undefined;
      if (hash) descriptor.digest = { sha256: hash };
    }
    descriptor.annotations = {
      element: planned.element.name,
      kind: source.kind,
      ...(source.directory !== undefined ? { directory: source.directory } : {}),
      config,
      key: key ?? null,
      declaredAt: `${source.file} line ${source.line}`,
    };
    return descriptor;
  });
}

/** Builds the statement; the caller serialises it with `serializeProvenance`. */
export function provenanceStatement(input: ProvenanceInput): ProvenanceStatement {
  const { target, closure } = input;
  const artifact = target.artifact;
  if (!artifact) throw new Error(`${target.element.name} has no artifact`);
  const direct = new Map(target.element.dependencies.map((d) => [d.name, d.type]));
  const dependencies = closure.filter((p) => p.element.name !== target.element.name);
  const resolvedDependencies: ResourceDescriptor[] = [];
  for (const planned of closure) resolvedDependencies.push(...sourceDescriptors(planned, input.project.aliases));
  for (const planned of dependencies) {
    const descriptor: ResourceDescriptor = {
      name: planned.element.name,
      uri: `urn:granary:artifact:${input.project.name}/${planned.element.name}/${planned.key}`,
      ...(planned.artifact ? { digest: digestSet(planned.artifact.root) } : {}),
      annotations: {
        element: planned.element.name,
        dependency: direct.get(planned.element.name) ?? 'indirect',
        cacheKey: planned.key,
        artifactRoot: planned.artifact ? formatDigest(planned.artifact.root) : null,
        ...(planned.artifact?.actionDigest ? { action: formatDigest(planned.artifact.actionDigest) } : {}),
      },
    };
    resolvedDependencies.push(descriptor);
  }
  const byproducts: ResourceDescriptor[] = [
    {
      name: 'artifact',
      uri: `urn:granary:artifact:${input.project.name}/${target.element.name}/${target.key}`,
      digest: digestSet(artifact.root),
      annotations: { element: target.element.name, artifactRoot: formatDigest(artifact.root) },
    },
  ];
  for (const planned of closure) {
    const action = planned.artifact?.actionDigest;
    if (!action) continue;
    byproducts.push({
      name: `action:${planned.element.name}`,
      digest: digestSet(action),
      mediaType: 'application/x-protobuf; proto=build.bazel.remote.execution.v2.Action',
      annotations: {
        element: planned.element.name,
        action: formatDigest(action),
        ...(planned.artifact?.stdout ? { stdout: formatDigest(planned.artifact.stdout) } : {}),
        ...(planned.artifact?.stderr ? { stderr: formatDigest(planned.artifact.stderr) } : {}),
      },
    });
  }
  return {
    _type: STATEMENT_TYPE,
    subject: [{ name: input.tarball.name, uri: input.uri, digest: digestSet(input.tarball.digest) }],
    predicateType: SLSA_PROVENANCE_V1,
    predicate: {
      buildDefinition: {
        buildType: BUILD_TYPE,
        externalParameters: {
          project: input.project.name,
          element: target.element.name,
          cacheKey: target.key,
          uri: input.uri,
        },
        internalParameters: {
          cacheKeyVersion: CACHE_KEY_VERSION,
          platform: input.platform,
          instanceName: input.instanceName,
        },
        resolvedDependencies,
      },
      runDetails: {
        builder: { id: input.builderId, ...(input.version ? { version: { granary: input.version } } : {}) },
        byproducts,
      },
    },
  };
}

export function serializeProvenance(statement: ProvenanceStatement): Buffer {
  return Buffer.from(`${JSON.stringify(statement, null, 2)}\n`);
}

/** What a rebuild needs from a record, checked for shape. */
export interface ProvenanceSummary {
  project: string;
  element: string;
  cacheKey: string;
  uri: string;
  subject: { name: string; sha256: string };
  artifactRoot: Digest;
  /** Dependency element -> its cache key and artifact root. */
  dependencies: Map<string, { cacheKey: string; artifactRoot?: Digest }>;
}

function parseDigestText(text: unknown, what: string): Digest {
  const match = typeof text === 'string' ? /^([0-9a-f]+)\/(\d+)$/.exec(text) : null;
  if (!match) throw new Error(`provenance record: ${what} is not a digest HASH/SIZE`);
  return { hash: match[1] as string, sizeBytes: Number(match[2]) };
}

/** Parses and checks a stored record. */
export function parseProvenance(data: Buffer | string): ProvenanceSummary {
  let statement: ProvenanceStatement;
  try {
    statement = JSON.parse(data.toString()) as ProvenanceStatement;
  } catch (error) {
    throw new Error(`the provenance record is not JSON: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (statement?._type !== STATEMENT_TYPE) throw new Error(`the provenance record is not an in-toto Statement v1`);
  if (statement.predicateType !== SLSA_PROVENANCE_V1)
    throw new Error(`the provenance record's predicate is not SLSA Provenance v1`);
  const definition = statement.predicate?.buildDefinition;
  if (definition?.buildType !== BUILD_TYPE)
    throw new Error(`the provenance record is of build type ${String(definition?.buildType)}, not ${BUILD_TYPE}`);
  const { project, element, cacheKey, uri } = definition.externalParameters ?? {};
  if (
    typeof project !== 'string' ||
    typeof element !== 'string' ||
    typeof cacheKey !== 'string' ||
    typeof uri !== 'string'
  ) {
    throw new Error('provenance record: externalParameters must name project, element, cacheKey and uri');
  }
  const artifact = statement.predicate.runDetails?.byproducts?.find((b) => b.name === 'artifact');
  const subject = statement.subject?.[0];
  if (!subject?.name || !subject.digest?.sha256) throw new Error('provenance record: no subject with a sha256 digest');
  const dependencies = new Map<string, { cacheKey: string; artifactRoot?: Digest }>();
  for (const d of definition.resolvedDependencies ?? []) {
    const annotations = d.annotations as Record<string, unknown> | undefined;
    if (!annotations || typeof annotations.cacheKey !== 'string' || typeof annotations.element !== 'string') continue;
    dependencies.set(annotations.element, {
      cacheKey: annotations.cacheKey,
      ...(annotations.artifactRoot
        ? { artifactRoot: parseDigestText(annotations.artifactRoot, `the artifact of ${annotations.element}`) }
        : {}),
    });
  }
  return {
    project,
    element,
    cacheKey,
    uri,
    subject: { name: subject.name, sha256: subject.digest.sha256 },
    artifactRoot: parseDigestText(artifact?.annotations?.artifactRoot, 'the artifact root'),
    dependencies,
  };
}
