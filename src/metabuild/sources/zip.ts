/**
 * The `zip` source (from BuildStream's community plugins): an archive by
 * `url`, checked against `ref` (its sha256), staged as BuildStream extracts
 * it: `base-dir` picks a directory by glob as for tar ('*' by default, the
 * single top directory; '' for the whole archive), every file is a regular,
 * non-executable file (permissions are not kept, and a symlink member
 * becomes a file holding its target), and `.`/`..` components are dropped.
 */

import { backgroundContext } from '../../context/requestContext.js';
import type { Digest } from '../../digest/digest.js';
import { TreeEditor } from '../../tree/editor.js';
import { BlobUploader } from './blobUploader.js';
import { obtainVerified } from './download.js';
import {
  checkKeys,
  describeError,
  optionalString,
  requireSha256Ref,
  requireString,
  type SourceConfig,
  type SourceContext,
  SourceError,
  type SourceKind,
} from './sourceKind.js';
import { selectBaseDir } from './tar.js';
import { openZip } from './zipReader.js';

const KIND = 'zip';

interface ZipConfig {
  url: string;
  ref: string;
  baseDir: string;
}

function parse(config: SourceConfig, location: string | undefined): ZipConfig {
  const where = location ?? '';
  checkKeys(config, KIND, ['url', 'ref', 'base-dir', 'version', 'version-guess-pattern'], where);
  const url = requireString(config, 'url', KIND, where);
  const ref = requireSha256Ref(config, KIND, url, 'the archive', location);
  return { url, ref, baseDir: optionalString(config, 'base-dir', KIND, where) ?? '*' };
}

/** A member name without empty, '.' and '..' components, as Python's zipfile extracts it. */
function cleanName(name: string): string {
  return name
    .split('/')
    .filter((part) => part !== '' && part !== '.' && part !== '..')
    .join('/');
}

/** Every directory path of the archive, including those only implied by members' names. */
function archiveDirectories(names: readonly string[]): string[] {
  const found = new Set<string>();
  for (const name of names) {
    if (name === '.' || name === './') continue;
    // 'a/b/' and 'a/b/c' both name the directories 'a' and 'a/b'.
    const parts = name.split('/');
    for (let index = 1; index < parts.length; index++) found.add(parts.slice(0, index).join('/'));
  }
  return [...found].filter((path) => path !== '' && path !== '.').sort();
}

async function stageZip(config: SourceConfig, context: SourceContext): Promise<Digest> {
  const parsed = parse(config, context.location);
  const path = await obtainVerified(parsed.url, parsed.ref, KIND, context, 'the archive');
  const fail = (detail: string) => new SourceError(context.location, `zip source ${parsed.url}: ${detail}`);
  let archive: Awaited<ReturnType<typeof openZip>>;
  try {
    archive = await openZip(path);
  } catch (error) {
    throw fail(describeError(error));
  }
  const uploader = new BlobUploader(context.cas, { digestFunction: context.digestFunction, tempDir: context.cacheDir });
  const editor = TreeEditor.create(backgroundContext(), context.cas, context.digestFunction);
  try {
    const base = selectBaseDir(archiveDirectories(archive.members.map((member) => member.name)), parsed.baseDir);
    if (base === undefined) throw fail(`no directory in the archive matches base-dir '${parsed.baseDir}'`);
    const prefix = base === '' ? '' : `${base}/`;
    for (const member of archive.members) {
      if (prefix && (!member.name.startsWith(prefix) || member.name === prefix)) continue;
      const name = cleanName(member.name.slice(prefix.length));
      if (name === '') continue;
      if (member.isDirectory) await editor.makeDirectory(name);
      else await editor.putFile(name, { digest: await uploader.addBuffer(await member.read()), executable: false });
    }
    await uploader.close();
  } catch (error) {
    await uploader.dispose();
    if (error instanceof SourceError) throw error;
    throw fail(describeError(error));
  } finally {
    await archive.close();
  }
  return editor.finish();
}

export const zipSource: SourceKind = {
  kind: KIND,
  validate(config, location) {
    parse(config, location);
  },
  async key(config, context) {
    const { url, ref, baseDir } = parse(config, context.location);
    return { url, ref, 'base-dir': baseDir };
  },
  stage: stageZip,
};
