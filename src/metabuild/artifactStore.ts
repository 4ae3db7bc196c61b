/**
 * Artifacts live in the CAS; this records which artifact an element's cache key
 * produced, as an entry of the farm's action cache under a key derived from the
 * project, element and cache key. The entry is an ActionResult whose output
 * directory "artifact" is the artifact tree, whose stdout and stderr are the build
 * log, and whose output symlink "build-action" names the Action that built it.
 * The action cache serves an entry only while everything it references is in the
 * CAS, so a partly evicted artifact reads as "not cached" and is rebuilt.
 */
import { type Connection, unary } from '../client/connection.js';
import { type Digest, digestOf } from '../digest/digest.js';
import { type ActionResult, Directory, Tree } from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import { type BlobStore, getBuffer, putBuffer } from '../storage/blobStore.js';
import { Code, notFound, StatusError } from '../util/status.js';

export interface Artifact {
  root: Digest;
  stdout?: Digest;
  stderr?: Digest;
  /** The REAPI Action that built it (absent for import, stack and compose). */
  actionDigest?: Digest;
}

export class ArtifactStore {
  constructor(
    private readonly connection: Connection,
    private readonly cas: BlobStore,
  ) {}

  async lookup(project: string, element: string, key: string): Promise<Artifact | undefined> {
    try {
      const result = await unary<ActionResult>((done) =>
        this.connection.actionCache.getActionResult(
          {
            instanceName: this.connection.instanceName,
            actionDigest: entryKey(project, element, key),
            inlineStdout: false,
            inlineStderr: false,
            inlineOutputFiles: [],
            digestFunction: 0,
          },
          done,
        ),
      );
      const output = result.outputDirectories.find((d) => d.path === 'artifact');
      const root = output?.rootDirectoryDigest;
      if (!root) return undefined;
      const action = result.outputSymlinks.find((s) => s.path === 'build-action')?.target;
      return { root, stdout: result.stdoutDigest, stderr: result.stderrDigest, actionDigest: parseDigestText(action) };
    } catch (error) {
      if (error instanceof StatusError && error.code === Code.NOT_FOUND) return undefined;
      throw error;
    }
  }

  async record(project: string, element: string, key: string, artifact: Artifact): Promise<void> {
    const treeDigest = await this.uploadTree(artifact.root);
    const result: ActionResult = {
      outputFiles: [],
      outputFileSymlinks: [],
      outputSymlinks: artifact.actionDigest
        ? [
            {
              path: 'build-action',
              target: `${artifact.actionDigest.hash}/${artifact.actionDigest.sizeBytes}`,
              nodeProperties: undefined,
            },
          ]
        : [],
      outputDirectories: [
        { path: 'artifact', treeDigest, isTopologicallySorted: false, rootDirectoryDigest: artifact.root },
      ],
      outputDirectorySymlinks: [],
      exitCode: 0,
      stdoutRaw: Buffer.alloc(0),
      stdoutDigest: artifact.stdout,
      stderrRaw: Buffer.alloc(0),
      stderrDigest: artifact.stderr,
      executionMetadata: undefined,
    };
    await unary((done) =>
      this.connection.actionCache.updateActionResult(
        {
          instanceName: this.connection.instanceName,
          actionDigest: entryKey(project, element, key),
          actionResult: result,
          resultsCachePolicy: undefined,
          digestFunction: 0,
        },
        done,
      ),
    );
  }

  /** Builds and uploads the Tree message of a directory already in the CAS. */
  private async uploadTree(root: Digest): Promise<Digest> {
    const children = new Map<string, Directory>();
    const load = async (digest: Digest): Promise<Directory> => {
      const data = await getBuffer(this.cas, digest);
      if (!data) throw notFound(`artifact directory ${digest.hash}/${digest.sizeBytes} is missing from the CAS`);
      return Directory.decode(data);
    };
    const rootDirectory = await load(root);
    const queue = [...rootDirectory.directories];
    while (queue.length > 0) {
      const node = queue.shift();
      if (!node?.digest || children.has(node.digest.hash)) continue;
      const directory = await load(node.digest);
      children.set(node.digest.hash, directory);
      queue.push(...directory.directories);
    }
    const data = Buffer.from(Tree.encode({ root: rootDirectory, children: [...children.values()] }).finish());
    const digest = digestOf(data);
    await putBuffer(this.cas, digest, data);
    return digest;
  }
}

/** The action-cache key of an element's artifact record. */
export function entryKey(project: string, element: string, key: string): Digest {
  return digestOf(`granary-artifact\0${project}/${element}\0${key}`);
}

function parseDigestText(text: string | undefined): Digest | undefined {
  const match = text ? /^([0-9a-f]+)\/(\d+)$/.exec(text) : null;
  return match ? { hash: match[1] as string, sizeBytes: Number(match[2]) } : undefined;
}
