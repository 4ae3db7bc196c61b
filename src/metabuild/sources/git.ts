/**
 * The `git` source: the tree of commit `ref` in a local repository (`url` is a
 * path relative to the project, a file:// URL, or either through an alias).
 * The tree is read with `git ls-tree` and `git cat-file --batch`, exactly as
 * committed: no .gitattributes export rules or filters apply, executable bits
 * and symlinks are kept. `track` and the other tracking keys are accepted and
 * ignored for builds. Submodules are not fetched: a commit with submodules needs
 * `checkout-submodules: false`, and then each one stages as an empty directory,
 * as an uninitialised checkout has it.
 */
import { spawn } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { backgroundContext } from '../../context/requestContext.js';
import type { Digest } from '../../digest/digest.js';
import { TreeEditor } from '../../tree/editor.js';
import { BlobUploader } from './blobUploader.js';
import { ByteReader } from './byteReader.js';
import {
  checkKeys,
  describeError,
  localPathOf,
  optionalBoolean,
  requireString,
  type SourceConfig,
  type SourceContext,
  SourceError,
  type SourceKind,
  translateUrl,
} from './sourceKind.js';

const KIND = 'git';
const KEYS = ['url', 'ref', 'track', 'track-tags', 'ref-format', 'tags', 'checkout-submodules', 'submodules'];
const COMMIT = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/;
/** BuildStream's git-describe ref format: <tag>-<n>-g<commit>. */
const DESCRIBE = /-g([0-9a-f]{40}|[0-9a-f]{64})$/;

interface GitConfig {
  url: string;
  commit: string;
  checkoutSubmodules: boolean;
}

function parse(config: SourceConfig, location: string | undefined): GitConfig {
  const where = location ?? '';
  checkKeys(config, KIND, KEYS, where);
  const url = requireString(config, 'url', KIND, where);
  const ref = config.ref;
  if (ref === undefined || ref === null) {
    throw new SourceError(location, `git source ${url}: no 'ref' (a commit sha); track the source first`);
  }
  if (typeof ref !== 'string') throw new SourceError(location, `git source ${url}: 'ref' must be a commit sha`);
  const commit = COMMIT.test(ref) ? ref : DESCRIBE.exec(ref)?.[1];
  if (!commit) {
    throw new SourceError(
      location,
      `git source ${url}: 'ref' "${ref}" is not a commit sha (40 or 64 lowercase hex digits)`,
    );
  }
  const checkoutSubmodules = optionalBoolean(config, 'checkout-submodules', KIND, where) ?? true;
  return { url, commit, checkoutSubmodules };
}

interface GitResult {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

function git(repo: string, args: string[]): Promise<GitResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', ['-c', 'safe.directory=*', '-C', repo, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, GIT_TERMINAL_PROMPT: '0' },
    });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => stdout.push(c));
    child.stderr.on('data', (c: Buffer) => stderr.push(c));
    child.on('error', reject);
    child.on('close', (code) =>
      resolve({ code, stdout: Buffer.concat(stdout), stderr: Buffer.concat(stderr).toString().trim() }),
    );
  });
}

interface TreeItem {
  mode: string;
  type: string;
  object: string;
  path: string;
}

function parseLsTree(output: Buffer): TreeItem[] {
  const items: TreeItem[] = [];
  for (const record of output.toString('utf8').split('\0')) {
    if (record === '') continue;
    const tab = record.indexOf('\t');
    const [mode, type, object] = record.slice(0, tab).split(' ') as [string, string, string];
    items.push({ mode, type, object, path: record.slice(tab + 1) });
  }
  return items;
}

/** Streams the given blobs out of the repository; `onBlob` must consume exactly `size` bytes. */
async function readBlobs(
  repo: string,
  objects: readonly string[],
  onBlob: (object: string, size: number, body: AsyncIterable<Buffer>) => Promise<void>,
): Promise<void> {
  const child = spawn('git', ['-c', 'safe.directory=*', '-C', repo, 'cat-file', '--batch'], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const stderr: Buffer[] = [];
  child.stderr.on('data', (c: Buffer) => stderr.push(c));
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  child.stdin.on('error', () => undefined); // reported through the exit status instead
  child.stdin.end(objects.map((o) => `${o}\n`).join(''));
  const reader = new ByteReader(child.stdout as AsyncIterable<Buffer>);
  try {
    for (const object of objects) {
      const line = await reader.readLine();
      if (line === undefined) throw new Error(`git cat-file ended early: ${Buffer.concat(stderr).toString().trim()}`);
      const [name, type, size] = line.split(' ');
      if (type !== 'blob' || name !== object || size === undefined)
        throw new Error(`cannot read object ${object}: ${line}`);
      const length = Number(size);
      await onBlob(object, length, reader.stream(length));
      await reader.skip(1);
    }
  } catch (error) {
    child.kill();
    await reader.close();
    await exited.catch(() => undefined);
    throw error;
  }
  await reader.close();
  const code = await exited;
  if (code !== 0) throw new Error(`git cat-file failed: ${Buffer.concat(stderr).toString().trim()}`);
}

async function stageGit(config: SourceConfig, context: SourceContext): Promise<Digest> {
  const { location } = context;
  const parsed = parse(config, location);
  const fail = (detail: string) => new SourceError(location, `git source ${parsed.url}: ${detail}`);
  const url = translateUrl(parsed.url, context.aliases);
  const repo = localPathOf(url, context.projectDir);
  if (repo === undefined) throw fail(`only local repositories are supported (path or file:// URL), not ${url}`);
  if (
    !(await stat(repo).then(
      (s) => s.isDirectory(),
      () => false,
    ))
  )
    throw fail(`no repository at ${repo}`);
  const probe = await git(repo, ['rev-parse', '--git-dir']);
  if (probe.code !== 0) throw fail(`${repo} is not a git repository: ${probe.stderr}`);
  const exists = await git(repo, ['cat-file', '-e', `${parsed.commit}^{commit}`]);
  if (exists.code !== 0) throw fail(`commit ${parsed.commit} does not exist in ${repo}`);
  const listing = await git(repo, ['ls-tree', '-r', '-z', '--full-tree', parsed.commit]);
  if (listing.code !== 0) throw fail(`cannot list commit ${parsed.commit}: ${listing.stderr}`);
  const items = parseLsTree(listing.stdout);

  const editor = TreeEditor.create(backgroundContext(), context.cas, context.digestFunction);
  const uploader = new BlobUploader(context.cas, { digestFunction: context.digestFunction, tempDir: context.cacheDir });
  try {
    const submodules = items.filter((i) => i.type === 'commit').map((i) => i.path);
    if (submodules.length > 0 && parsed.checkoutSubmodules) {
      throw fail(
        `commit ${parsed.commit} has submodules (${submodules.join(', ')}), which are not supported;` +
          ' set checkout-submodules: false to stage them as empty directories',
      );
    }
    for (const path of submodules) await editor.makeDirectory(path);
    const blobs = items.filter((i) => i.type === 'blob');
    const contents = new Map<string, Digest>();
    const targets = new Map<string, string>();
    const symlinkObjects = new Set(blobs.filter((b) => b.mode === '120000').map((b) => b.object));
    const unique = [...new Set(blobs.map((b) => b.object))];
    await readBlobs(repo, unique, async (object, _size, body) => {
      if (symlinkObjects.has(object)) {
        const parts: Buffer[] = [];
        for await (const chunk of body) parts.push(chunk);
        const data = Buffer.concat(parts);
        targets.set(object, data.toString('utf8'));
        contents.set(object, await uploader.addBuffer(data));
      } else {
        contents.set(object, await uploader.addStream(body));
      }
    });
    for (const blob of blobs) {
      if (blob.mode === '120000') await editor.putSymlink(blob.path, targets.get(blob.object) as string);
      else {
        await editor.putFile(blob.path, {
          digest: contents.get(blob.object) as Digest,
          executable: blob.mode === '100755',
        });
      }
    }
    await uploader.close();
  } catch (error) {
    await uploader.dispose();
    if (error instanceof SourceError) throw error;
    throw fail(describeError(error));
  }
  return editor.finish();
}

export const gitSource: SourceKind = {
  kind: KIND,
  validate(config, location) {
    parse(config, location);
  },
  async key(config, context) {
    const { url, commit } = parse(config, context.location);
    return { url, ref: commit };
  },
  stage: stageGit,
};
