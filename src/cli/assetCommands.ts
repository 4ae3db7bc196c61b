/**
 * `granary publish`, `provenance` and `push-dir`: the client side of the Remote
 * Asset API. Publish makes an element's artifact fetchable by URI (by Bazel's
 * remote downloader, as an http_archive); provenance reads back, and can
 * reproduce, what built it; push-dir names any local directory tree by a URI, for
 * the `remote-asset` source kind.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Connection } from '../client/connection.js';
import { qualifiersFrom } from '../client/remoteAsset.js';
import { backgroundContext } from '../context/requestContext.js';
import { type Digest, formatDigest } from '../digest/digest.js';
import { ProgressDisplay } from '../metabuild/progress.js';
import { type ProvenanceSummary, parseProvenance } from '../metabuild/publish/provenance.js';
import { fetchProvenance, publish, tarballDigest } from '../metabuild/publish/publish.js';
import { treeFromPath } from '../tree/hostTree.js';
import { listTree } from '../tree/list.js';
import { type FlagSpec, flag, parseArgs, UsageError, usage } from './args.js';
import {
  buildPlatform,
  CLIENT_FLAGS,
  type ClientSession,
  type FarmSession,
  openClient,
  openFarm,
} from './buildClient.js';
import { CLIENT_SECURITY_FLAGS } from './clientSecurity.js';
import { packageVersion } from './version.js';

const FARM_FLAGS: Record<string, FlagSpec> = {
  remote: CLIENT_FLAGS.remote as FlagSpec,
  instance: CLIENT_FLAGS.instance as FlagSpec,
  ...CLIENT_SECURITY_FLAGS,
  config: CLIENT_FLAGS.config as FlagSpec,
  help: CLIENT_FLAGS.help as FlagSpec,
};

const PUBLISH_FLAGS: Record<string, FlagSpec> = {
  ...CLIENT_FLAGS,
  uri: {
    type: 'string',
    help: 'the URI to publish under (e.g. https://artifacts.example/foo.tar); need not be reachable',
  },
};

const PROVENANCE_FLAGS: Record<string, FlagSpec> = {
  ...CLIENT_FLAGS,
  rebuild: {
    type: 'boolean',
    help: 'rebuild the element of the record from --project, bypassing the caches, and check the artifact is the same',
  },
  record: {
    type: 'string',
    help: 'read the record from FILE (as printed by granary provenance) instead of from the farm; for --rebuild on another farm',
  },
};

const PUSH_DIR_FLAGS: Record<string, FlagSpec> = {
  ...FARM_FLAGS,
  uri: { type: 'string', help: 'the URI to name the directory tree by' },
  qualifier: { type: 'list', help: 'a qualifier NAME=VALUE of the asset (repeatable)' },
};

/** The farm's address in the canonical form of `--remote` (grpc:// or grpcs://). */
function farmUrl(connection: Connection): string {
  const { address, tls } = connection.channel.target;
  return `${tls ? 'grpcs' : 'grpc'}://${address}`;
}

function builderId(connection: Connection): string {
  return `${farmUrl(connection)}${connection.instanceName ? `/${connection.instanceName}` : ''}`;
}

export async function publishCommand(argv: readonly string[]): Promise<void> {
  const args = parseArgs(argv, PUBLISH_FLAGS);
  if (flag(args, 'help')) {
    return void console.log(
      usage(
        'publish ELEMENT --uri URI [flags]',
        "Stores the element's artifact as a deterministic tarball with a provenance record, names it by URI\n" +
          '(Remote Asset API), and prints an http_archive rule for Bazel (--experimental_remote_downloader).',
        PUBLISH_FLAGS,
      ),
    );
  }
  const [element] = args.positionals;
  if (!element || args.positionals.length > 1) throw new UsageError('expected one ELEMENT');
  const uri = flag(args, 'uri');
  if (!uri) throw new UsageError('--uri is required');
  const client = await openClient(args, { targets: [element] });
  try {
    const plan = await client.builder.plan([element]);
    const target = plan.at(-1);
    if (!target?.artifact) {
      throw new Error(
        `${element} is not built (its cache key ${target?.key.slice(0, 16)} has no artifact); run granary build ${element}`,
      );
    }
    const result = await publish({
      project: client.project.config,
      plan,
      uri,
      cas: client.cas,
      asset: client.asset,
      builderId: builderId(client.connection),
      instanceName: client.connection.instanceName,
      platform: buildPlatform(),
      version: packageVersion(),
    });
    console.log(`granary: published ${element} as ${uri}`);
    console.log(`  tarball    ${result.name} sha256 ${result.sha256} (${result.tarball.sizeBytes} bytes)`);
    console.log(`  artifact   ${formatDigest(result.artifactRoot)}`);
    console.log(`  provenance ${formatDigest(result.provenance)} (granary provenance ${uri})`);
    console.log('');
    for (const line of downloaderHint(client)) console.log(line);
    console.log(result.snippet);
  } finally {
    await client.close();
  }
}

/**
 * How Bazel reaches what was published. The built-in farm stops with this command,
 * so its port is no use to Bazel: say what to run instead.
 */
function downloaderHint(farm: FarmSession): string[] {
  if (!farm.embedded) {
    return [
      `# In a Bazel WORKSPACE; fetch through Granary with --experimental_remote_downloader=${farmUrl(farm.connection)}`,
    ];
  }
  return [
    '# Published on the built-in farm, which stopped when this command ended: Bazel cannot fetch from it.',
    '# For Bazel, run a farm (granary serve, on grpc://127.0.0.1:8980 by default), publish there with',
    '# --remote grpc://127.0.0.1:8980, and build with --experimental_remote_downloader=grpc://127.0.0.1:8980.',
    '# In a Bazel WORKSPACE:',
  ];
}

export async function provenanceCommand(argv: readonly string[]): Promise<void> {
  const args = parseArgs(argv, PROVENANCE_FLAGS);
  if (flag(args, 'help')) {
    return void console.log(
      usage(
        'provenance URI [flags] | provenance --record FILE --rebuild [flags]',
        'Prints the provenance record (in-toto Statement, SLSA Provenance v1) published with URI.\n' +
          'With --rebuild, rebuilds its element from the project (--project) and checks the artifact matches.',
        PROVENANCE_FLAGS,
      ),
    );
  }
  const [uri] = args.positionals;
  const recordFile = flag(args, 'record');
  if (args.positionals.length > 1 || (!uri && !recordFile)) throw new UsageError('expected one URI (or --record FILE)');
  const farm = await openFarm(args);
  let closeFarm = true;
  try {
    let data: Buffer;
    if (recordFile) {
      data = readFileSync(recordFile);
    } else {
      const found = await fetchProvenance(farm.asset, farm.cas, uri as string);
      if (!found) {
        const where = farm.embedded ? 'the built-in farm' : farmUrl(farm.connection);
        throw new Error(
          `no provenance record is published for ${uri} on ${where} (granary publish ELEMENT --uri ${uri} publishes one)`,
        );
      }
      data = found.data;
    }
    if (flag(args, 'rebuild') !== 'true') {
      process.stdout.write(data);
      return;
    }
    const record = parseProvenance(data);
    if (uri && record.uri !== uri) throw new Error(`the record is of ${record.uri}, not ${uri}`);
    const display = new ProgressDisplay();
    const client = await openClient(
      args,
      { rebuild: [record.element], targets: [record.element], onEvent: (e) => display.handle(e) },
      farm,
    );
    closeFarm = false;
    try {
      await rebuildFromRecord(client, record, () => display.finish());
    } finally {
      await client.close();
    }
  } finally {
    if (closeFarm) await farm.close();
  }
}

/** Rebuilds the element of a record (dependencies from the cache) and compares the artifact and tarball. */
async function rebuildFromRecord(
  client: ClientSession,
  record: ProvenanceSummary,
  finishDisplay: () => void,
): Promise<void> {
  const { builder, project } = client;
  if (record.project !== project.config.name) {
    throw new Error(`the record is of project '${record.project}', but --project is '${project.config.name}'`);
  }
  if (!project.elements.has(record.element)) throw new Error(`the project has no element ${record.element}`);
  const plan = await builder.plan([record.element]);
  const mismatches: string[] = [];
  for (const planned of plan) {
    const expected =
      planned.element.name === record.element
        ? record.cacheKey
        : record.dependencies.get(planned.element.name)?.cacheKey;
    if (expected === undefined) mismatches.push(`${planned.element.name} is not in the record`);
    else if (expected !== planned.key)
      mismatches.push(`${planned.element.name}: cache key ${planned.key} but the record has ${expected}`);
  }
  if (mismatches.length > 0) {
    throw new Error(`the project does not match the record, so it cannot rebuild it:\n  ${mismatches.join('\n  ')}`);
  }
  console.log(`granary: ${record.element} has the recorded cache key ${record.cacheKey}; rebuilding it`);
  const { failed } = await builder.build([record.element]);
  finishDisplay();
  if (failed.length > 0) throw new Error(`the rebuild failed: ${failed.join(', ')}`);
  const after = await builder.plan([record.element]);
  for (const planned of after.slice(0, -1)) {
    const recorded = record.dependencies.get(planned.element.name)?.artifactRoot;
    const actual = planned.artifact?.root;
    if (recorded && actual && formatDigest(recorded) !== formatDigest(actual)) {
      console.log(
        `granary: note: dependency ${planned.element.name} has artifact ${formatDigest(actual)} here, ${formatDigest(recorded)} in the record`,
      );
    }
  }
  const root = after.at(-1)?.artifact?.root as Digest;
  await compareArtifacts(client, record, root);
  const tarball = await tarballDigest(client.cas, root);
  if (tarball.hash !== record.subject.sha256) {
    throw new Error(
      `the rebuilt artifact is the same tree, but its tarball is ${tarball.hash}, not ${record.subject.sha256}`,
    );
  }
  console.log(
    `granary: reproduced ${record.element}: artifact ${formatDigest(root)}, ${record.subject.name} sha256 ${tarball.hash}`,
  );
}

async function compareArtifacts(client: ClientSession, record: ProvenanceSummary, root: Digest): Promise<void> {
  if (root.hash === record.artifactRoot.hash && root.sizeBytes === record.artifactRoot.sizeBytes) return;
  // Say which paths differ when the recorded tree is still in the CAS.
  let detail = '';
  try {
    const describe = async (digest: Digest) =>
      new Set(
        (await listTree(backgroundContext(), client.cas, digest)).map((e) =>
          e.kind === 'file'
            ? `${e.path} ${formatDigest(e.digest)}${e.executable ? ' x' : ''}`
            : e.kind === 'symlink'
              ? `${e.path} -> ${e.target}`
              : `${e.path}/`,
        ),
      );
    const [before, after] = [await describe(record.artifactRoot), await describe(root)];
    const changed = [...after]
      .filter((e) => !before.has(e))
      .concat([...before].filter((e) => !after.has(e)).map((e) => `(was) ${e}`));
    detail = `\n  ${changed.slice(0, 20).join('\n  ')}`;
  } catch {
    detail = ' (the recorded tree is no longer in the CAS to compare with)';
  }
  throw new Error(
    `not reproduced: the rebuilt artifact of ${record.element} is ${formatDigest(root)}, the record has ${formatDigest(record.artifactRoot)}${detail}`,
  );
}

export async function pushDirCommand(argv: readonly string[]): Promise<void> {
  const args = parseArgs(argv, PUSH_DIR_FLAGS);
  if (flag(args, 'help')) {
    return void console.log(
      usage(
        'push-dir DIR --uri URI [flags]',
        'Uploads a directory tree to the CAS and names it by URI (Remote Asset PushDirectory),\n' +
          'for elements with a remote-asset source (type: directory).',
        PUSH_DIR_FLAGS,
      ),
    );
  }
  const [directory] = args.positionals;
  if (!directory || args.positionals.length > 1) throw new UsageError('expected one DIR');
  const uri = flag(args, 'uri');
  if (!uri) throw new UsageError('--uri is required');
  const map: Record<string, string> = {};
  for (const text of args.flags.get('qualifier') ?? []) {
    const eq = text.indexOf('=');
    if (eq <= 0) throw new UsageError(`--qualifier must be NAME=VALUE, not "${text}"`);
    map[text.slice(0, eq)] = text.slice(eq + 1);
  }
  const farm = await openFarm(args);
  try {
    const root = await treeFromPath(backgroundContext(), farm.cas, resolve(directory));
    await farm.asset.pushDirectory([uri], root, { qualifiers: qualifiersFrom(map) });
    console.log(`granary: pushed ${directory} as ${uri}`);
    console.log(`  root ${formatDigest(root)}`);
  } finally {
    await farm.close();
  }
}
