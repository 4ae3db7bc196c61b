/**
 * Staging the sources of BuildStream 2 junctions (tar, git, ...) into a
 * directory, so the subproject they hold can be read.
 *
 * The sources are staged as any element's (into an in-memory CAS, since
 * nothing of it goes to the farm) and written out under
 * <cacheDir>/junctions/<key>, the key being a hash of the sources' key
 * material: a junction whose sources did not change is staged once.
 */
import { createHash, randomUUID } from 'node:crypto';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { backgroundContext } from '../context/requestContext.js';
import { MemoryBlobStore } from '../storage/memoryBlobStore.js';
import { materializeTree } from '../tree/materialize.js';
import { canonicalJson } from './cacheKey.js';
import type { JunctionStager } from './project/index.js';
import { format2SourceKinds, type SourceDeclaration, sourcesKey, stageSources } from './sources/index.js';

/** A JunctionStager keeping staged junctions under `cacheDirectory`. */
export function junctionStager(cacheDirectory: string): JunctionStager {
  return async ({ sources, projectDirectory, aliases, mirrors }) => {
    const declarations: SourceDeclaration[] = sources.map((source) => {
      const config: Record<string, unknown> = { ...source.config };
      delete config.provenance;
      return {
        config: {
          kind: source.kind,
          ...(source.directory !== undefined ? { directory: source.directory } : {}),
          ...config,
        },
        location: `${source.file} line ${source.line}`,
      };
    });
    const cas = new MemoryBlobStore(16 * 1024 ** 3);
    const context = { projectDir: projectDirectory, aliases, mirrors, cas, cacheDir: cacheDirectory, format2: true };
    const key = createHash('sha256')
      .update(canonicalJson(await sourcesKey(declarations, context, format2SourceKinds)))
      .digest('hex');
    const directory = join(cacheDirectory, 'junctions', key);
    if (
      await stat(directory).then(
        (info) => info.isDirectory(),
        () => false,
      )
    )
      return directory;
    const root = await stageSources(declarations, context, format2SourceKinds);
    const temporary = join(cacheDirectory, 'junctions', `.staging-${randomUUID()}`);
    await mkdir(join(cacheDirectory, 'junctions'), { recursive: true });
    try {
      await materializeTree(backgroundContext(), cas, root, temporary);
      await rename(temporary, directory).catch(async (error: NodeJS.ErrnoException) => {
        // Another process staged the same junction meanwhile.
        if (error.code !== 'ENOTEMPTY' && error.code !== 'EEXIST') throw error;
      });
    } finally {
      await rm(temporary, { recursive: true, force: true });
    }
    return directory;
  };
}
