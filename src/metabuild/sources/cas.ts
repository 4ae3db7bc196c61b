/**
 * The `cas` source: a Directory tree already in the farm's CAS, named by its
 * digest `HASH/SIZE` (for example the root digest `granary push-dir` prints, or
 * an output directory of a Bazel action). The digest is the key; staging checks
 * that the whole tree (every Directory and file blob) is present and stages the
 * tree as it is, without copying anything.
 */
import { type Digest, formatDigest, parseDigest } from '../../digest/digest.js';
import { Directory } from '../../gen/build/bazel/remote/execution/v2/remote_execution.js';
import { getBuffer } from '../../storage/blobStore.js';
import {
  checkKeys,
  describeError,
  requireString,
  type SourceConfig,
  type SourceContext,
  SourceError,
  type SourceKind,
} from './sourceKind.js';

const KIND = 'cas';
const DIGEST_TEXT = /^([0-9a-f]+)\/(\d+)$/;

function parse(config: SourceConfig, location: string | undefined): Digest {
  const where = location ?? '';
  checkKeys(config, KIND, ['digest'], where);
  const text = requireString(config, 'digest', KIND, where);
  const match = DIGEST_TEXT.exec(text);
  try {
    if (!match) throw new Error('not of the form HASH/SIZE');
    return parseDigest({ hash: match[1] as string, sizeBytes: Number(match[2]) }, undefined);
  } catch (error) {
    throw new SourceError(
      location,
      `cas source: 'digest' "${text}" must be the digest of a Directory as HASH/SIZE (lowercase hex hash): ${describeError(error)}`,
    );
  }
}

/** Checks that every Directory and file of the tree is in the CAS. */
async function checkPresent(root: Digest, context: SourceContext): Promise<void> {
  const files = new Map<string, Digest>();
  const seen = new Set<string>();
  const queue: Array<{ digest: Digest; path: string }> = [{ digest: root, path: '' }];
  while (queue.length > 0) {
    const { digest, path } = queue.shift() as { digest: Digest; path: string };
    const key = formatDigest(digest);
    if (seen.has(key)) continue;
    seen.add(key);
    if (digest.sizeBytes === 0) continue;
    const data = await getBuffer(context.cas, digest);
    if (!data) {
      throw new SourceError(
        context.location,
        `cas source ${formatDigest(root)}: directory ${path || '(the root)'} (${key}) is not in the CAS`,
      );
    }
    let directory: Directory;
    try {
      directory = Directory.decode(data);
    } catch (error) {
      throw new SourceError(
        context.location,
        `cas source ${formatDigest(root)}: ${key} is not a Directory: ${describeError(error)}`,
      );
    }
    for (const file of directory.files) if (file.digest) files.set(formatDigest(file.digest), file.digest);
    for (const child of directory.directories) {
      if (child.digest) queue.push({ digest: child.digest, path: path ? `${path}/${child.name}` : child.name });
    }
  }
  const missing = await context.cas.findMissing([...files.values()]);
  if (missing.length > 0) {
    throw new SourceError(
      context.location,
      `cas source ${formatDigest(root)}: ${missing.length} file blob(s) of the tree are not in the CAS, e.g. ${formatDigest(missing[0] as Digest)}`,
    );
  }
}

export const casSource: SourceKind = {
  kind: KIND,
  validate(config, location) {
    parse(config, location);
  },
  async key(config, context) {
    return { digest: formatDigest(parse(config, context.location)) };
  },
  async stage(config, context) {
    const root = parse(config, context.location);
    await checkPresent(root, context);
    return root;
  },
};
