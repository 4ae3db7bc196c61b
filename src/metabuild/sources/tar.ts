/**
 * The `tar` source: a tarball by `url` (through a project alias; file:// URLs,
 * plain paths relative to the project, or http(s)), checked against `ref`, the
 * sha256 of the tarball, before anything is staged. `base-dir` selects what to
 * stage as BuildStream does: a glob ('*' matches within one path component, '**'
 * across them) over the directories in the archive; the first match in sorted
 * order is staged with its prefix stripped. The default '*' thus strips the
 * single top-level directory; '' stages the whole archive.
 *
 * Tarballs are obtained as download.ts does (aliases, mirrors, a cache by sha256).
 */

import type { Digest } from '../../digest/digest.js';
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
import { importTar, openArchive } from './tarReader.js';

const KIND = 'tar';

interface TarConfig {
  url: string;
  ref: string;
  baseDir: string;
}

function parse(config: SourceConfig, location: string | undefined): TarConfig {
  const where = location ?? '';
  checkKeys(config, KIND, ['url', 'ref', 'base-dir'], where);
  const url = requireString(config, 'url', KIND, where);
  const ref = requireSha256Ref(config, KIND, url, 'the tarball', location);
  const baseDir = optionalString(config, 'base-dir', KIND, where) ?? '*';
  return { url, ref, baseDir };
}

/** BuildStream's glob: '*' and '?' stay within a path component, '**' crosses them. */
export function globToRegExp(pattern: string): RegExp {
  let out = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string;
    if (c === '*') {
      if (pattern[i + 1] === '*') {
        out += '.*';
        i++;
      } else out += '[^/]*';
    } else if (c === '?') out += '[^/]';
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 2);
      if (end < 0) out += '\\[';
      else {
        let body = pattern.slice(i + 1, end).replace(/\\/g, '\\\\');
        if (body.startsWith('!')) body = `^${body.slice(1)}`;
        out += `[${body}]`;
        i = end;
      }
    } else out += c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  return new RegExp(`^${out}$`, 's');
}

/** The directory to stage for `pattern`, from all directories of the archive (sorted). */
export function selectBaseDir(directories: readonly string[], pattern: string): string | undefined {
  const normal = pattern.replace(/^(\.\/|\/)+/, '').replace(/\/+$/, '');
  if (normal === '' || normal === '.') return '';
  const regexp = globToRegExp(normal);
  return directories.find((d) => regexp.test(d));
}

async function stageTar(config: SourceConfig, context: SourceContext): Promise<Digest> {
  const parsed = parse(config, context.location);
  const path = await obtainVerified(parsed.url, parsed.ref, KIND, context, 'the tarball');
  return stageTarball(path, parsed.baseDir, `tar source ${parsed.url}`, context);
}

/**
 * Imports a local tarball into the CAS and returns the tree under its base-dir
 * (BuildStream's glob; '*' strips the single top directory). Shared by the tar
 * and remote-asset sources. `what` names the source in errors.
 */
export async function stageTarball(
  path: string,
  baseDir: string,
  what: string,
  context: SourceContext,
): Promise<Digest> {
  let imported: Awaited<ReturnType<typeof importTar>>;
  try {
    imported = await importTar(context.cas, openArchive(path), {
      digestFunction: context.digestFunction,
      tempDir: context.cacheDir,
      executableBits: context.format2 ? 0o100 : 0o111,
    });
  } catch (error) {
    throw new SourceError(context.location, `${what}: ${describeError(error)}`);
  }
  const base = selectBaseDir(await imported.editor.directoryPaths(), baseDir);
  if (base === undefined) {
    throw new SourceError(
      context.location,
      `${what}: no directory in the tarball matches base-dir '${baseDir}'` +
        (baseDir === '*' ? " (the default); set base-dir: '' to stage the whole tarball" : ''),
    );
  }
  return imported.editor.finish(base);
}

export const tarSource: SourceKind = {
  kind: KIND,
  validate(config, location) {
    parse(config, location);
  },
  async key(config, context) {
    const { url, ref, baseDir } = parse(config, context.location);
    return { url, ref, 'base-dir': baseDir };
  },
  stage: stageTar,
};
