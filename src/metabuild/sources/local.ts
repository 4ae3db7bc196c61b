/**
 * The `local` source: a file or directory of the project, by `path` relative to
 * the project directory. A directory's content is staged at the staging root; a
 * single file is staged under its own name. The key is the digest of the staged
 * tree, so any change of content, name, executable bit or symlink changes it.
 */
import { realpath, stat } from 'node:fs/promises';
import { basename, join, sep } from 'node:path';
import { backgroundContext } from '../../context/requestContext.js';
import { type Digest, formatDigest } from '../../digest/digest.js';
import { treeFromFile, treeFromPath } from '../../tree/hostTree.js';
import {
  checkKeys,
  checkRelativePath,
  describeError,
  requireString,
  type SourceConfig,
  type SourceContext,
  SourceError,
  type SourceKind,
} from './sourceKind.js';

const KIND = 'local';

function pathOf(config: SourceConfig, location: string | undefined): string {
  return checkRelativePath(requireString(config, 'path', KIND, location ?? ''), "local source 'path'", location);
}

async function stageLocal(config: SourceConfig, context: SourceContext, upload: boolean): Promise<Digest> {
  const location = context.location;
  const relative = pathOf(config, location);
  const full = join(context.projectDir, relative);
  let real: string;
  try {
    real = await realpath(full);
  } catch (error) {
    throw new SourceError(
      location,
      `local source: path "${relative}" does not exist in the project (${describeError(error)})`,
    );
  }
  const project = await realpath(context.projectDir);
  if (real !== project && !real.startsWith(project + sep)) {
    throw new SourceError(location, `local source: path "${relative}" leads outside the project directory`);
  }
  const stats = await stat(real);
  const options = { upload, digestFunction: context.digestFunction };
  try {
    if (stats.isDirectory()) return await treeFromPath(backgroundContext(), context.cas, real, options);
    if (stats.isFile()) return await treeFromFile(backgroundContext(), context.cas, real, basename(full), options);
  } catch (error) {
    throw new SourceError(location, `local source: cannot stage "${relative}": ${describeError(error)}`);
  }
  throw new SourceError(location, `local source: path "${relative}" is neither a file nor a directory`);
}

export const localSource: SourceKind = {
  kind: KIND,
  validate(config, location) {
    checkKeys(config, KIND, ['path'], location);
    pathOf(config, location);
  },
  async key(config, context) {
    return formatDigest(await stageLocal(config, context, false));
  },
  stage(config, context) {
    return stageLocal(config, context, true);
  },
};
