/**
 * The `tar` source: a tarball by `url` (through a project alias; file:// URLs,
 * plain paths relative to the project, or http(s)), checked against `ref`, the
 * sha256 of the tarball, before anything is staged. `base-dir` selects what to
 * stage as BuildStream does: a glob ('*' matches within one path component, '**'
 * across them) over the directories in the archive; the first match in sorted
 * order is staged with its prefix stripped. The default '*' thus strips the
 * single top-level directory; '' stages the whole archive.
 *
 * Downloaded tarballs are kept in <cacheDir>/tar/<sha256>, only after they
 * matched their ref.
 */

import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { Digest } from '../../digest/digest.js';
import {
  checkKeys,
  describeError,
  localPathOf,
  optionalString,
  requireString,
  type SourceConfig,
  type SourceContext,
  SourceError,
  type SourceKind,
  translateUrl,
} from './sourceKind.js';
import { importTar, openArchive } from './tarReader.js';

const KIND = 'tar';
const SHA256_HEX = /^[0-9a-f]{64}$/;

interface TarConfig {
  url: string;
  ref: string;
  baseDir: string;
}

function parse(config: SourceConfig, location: string | undefined): TarConfig {
  const where = location ?? '';
  checkKeys(config, KIND, ['url', 'ref', 'base-dir'], where);
  const url = requireString(config, 'url', KIND, where);
  const ref = config.ref;
  if (ref === undefined || ref === null) {
    throw new SourceError(location, `tar source ${url}: no 'ref' (the sha256 of the tarball); track the source first`);
  }
  if (typeof ref !== 'string' || !SHA256_HEX.test(ref)) {
    throw new SourceError(
      location,
      `tar source ${url}: 'ref' must be the sha256 of the tarball, 64 lowercase hex digits`,
    );
  }
  const baseDir = optionalString(config, 'base-dir', KIND, where) ?? '*';
  return { url, ref, baseDir };
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function mismatch(location: string | undefined, url: string, expected: string, actual: string): SourceError {
  return new SourceError(
    location,
    `tar source ${url}: sha256 mismatch: the ref expects ${expected} but the tarball is ${actual}`,
  );
}

/** A local path holding the verified tarball. */
async function obtain(config: TarConfig, context: SourceContext): Promise<string> {
  const { location } = context;
  const url = translateUrl(config.url, context.aliases);
  const local = localPathOf(url, context.projectDir);
  if (local !== undefined) {
    let actual: string;
    try {
      actual = await sha256File(local);
    } catch (error) {
      throw new SourceError(location, `tar source ${config.url}: cannot read ${local}: ${describeError(error)}`);
    }
    if (actual !== config.ref) throw mismatch(location, config.url, config.ref, actual);
    return local;
  }
  if (!/^https?:/.test(url))
    throw new SourceError(location, `tar source ${config.url}: unsupported URL scheme in ${url}`);
  const directory = join(context.cacheDir, 'tar');
  const cached = join(directory, config.ref);
  if (
    await stat(cached).then(
      () => true,
      () => false,
    )
  ) {
    if ((await sha256File(cached)) === config.ref) return cached;
    await rm(cached, { force: true });
  }
  await mkdir(directory, { recursive: true });
  const temporary = join(directory, `.download-${randomUUID()}`);
  try {
    let response: Response;
    try {
      response = await fetch(url);
    } catch (error) {
      throw new SourceError(location, `tar source ${config.url}: cannot download ${url}: ${describeError(error)}`);
    }
    if (!response.ok || !response.body) {
      throw new SourceError(location, `tar source ${config.url}: downloading ${url} failed: HTTP ${response.status}`);
    }
    const hash = createHash('sha256');
    const handle = await open(temporary, 'w');
    try {
      for await (const chunk of Readable.fromWeb(response.body as never) as AsyncIterable<Buffer>) {
        hash.update(chunk);
        await handle.write(chunk);
      }
    } finally {
      await handle.close();
    }
    const actual = hash.digest('hex');
    if (actual !== config.ref) throw mismatch(location, config.url, config.ref, actual);
    await rename(temporary, cached);
    return cached;
  } finally {
    await rm(temporary, { force: true });
  }
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
  const path = await obtain(parsed, context);
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
