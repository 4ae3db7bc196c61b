/**
 * The `cas` source: a Directory tree already in the farm's CAS, named by its
 * digest `HASH/SIZE` (for example the root digest `granary push-dir` prints, or
 * an output directory of a Bazel action). The digest is the key; staging checks
 * that the whole tree (every Directory and file blob) is present and stages the
 * tree as it is, without copying anything.
 */

import { backgroundContext } from '../../context/requestContext.js';
import { type Digest, formatDigest, parseDigest } from '../../digest/digest.js';
import { MalformedTreeError } from '../../tree/directory.js';
import { type TreeContents, treeContents } from '../../tree/walk.js';
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
  let contents: TreeContents;
  try {
    contents = await treeContents(backgroundContext(), context.cas, [root]);
  } catch (error) {
    if (!(error instanceof MalformedTreeError)) throw error;
    throw new SourceError(context.location, `cas source ${formatDigest(root)}: ${describeError(error)}`);
  }
  const absent = contents.missingDirectories[0];
  if (absent) {
    throw new SourceError(
      context.location,
      `cas source ${formatDigest(root)}: directory ${absent.path || '(the root)'} (${formatDigest(absent.digest)}) is not in the CAS`,
    );
  }
  const missing = await context.cas.findMissing(backgroundContext(), contents.files);
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
