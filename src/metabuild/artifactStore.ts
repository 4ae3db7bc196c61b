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
import { getTreeDirectories } from '../client/getTree.js';
import { backgroundContext } from '../context/requestContext.js';
import { type Digest, digestOf } from '../digest/digest.js';
import { type ActionResult, Directory, Tree } from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import { type BlobStore, putBuffer } from '../storage/blobStore.js';
import { Code, notFound, StatusError } from '../util/status.js';

export interface Artifact {
  root: Digest;
  stdout?: Digest;
  stderr?: Digest;
  /** The REAPI Action that built it (absent for import, stack and compose). */
  actionDigest?: Digest;
  /**
   * The Tree message of a directory the farm already sent with an ActionResult
   * (an Action's output), so recording the artifact need not build it again.
   * Used only while `root` is still that directory.
   */
  outputTree?: { rootDigest: Digest; treeDigest: Digest };
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
    const known = artifact.outputTree;
    const treeDigest =
      known && known.rootDigest.hash === artifact.root.hash && known.rootDigest.sizeBytes === artifact.root.sizeBytes
        ? known.treeDigest
        : await this.uploadTree(artifact.root);
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

  /**
   * Builds and uploads the Tree message of a directory already in the CAS,
   * its directories read in one GetTree call.
   */
  private async uploadTree(root: Digest): Promise<Digest> {
    const directories =
      root.sizeBytes === 0 ? [Directory.decode(Buffer.alloc(0))] : await getTreeDirectories(this.connection, root);
    const byDigest = new Map<string, Directory>();
    for (const directory of directories) {
      byDigest.set(digestOf(Buffer.from(Directory.encode(directory).finish())).hash, directory);
    }
    const rootDirectory = byDigest.get(root.hash);
    if (!rootDirectory) throw notFound(`artifact directory ${root.hash}/${root.sizeBytes} is missing from the CAS`);
    byDigest.delete(root.hash);
    const data = Buffer.from(Tree.encode({ root: rootDirectory, children: [...byDigest.values()] }).finish());
    const digest = digestOf(data);
    await putBuffer(backgroundContext(), this.cas, digest, data);
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
