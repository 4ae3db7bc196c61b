/**
 * The `patch` source (buildstream-plugins): applies a patch file of the
 * project (`path`) to what the sources before it staged in the same
 * directory, with the host's `patch -p<strip-level>` (default 1), as
 * BuildStream does. The key is the path, the patch's sha256 and the strip
 * level. Patching an empty directory is an error.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, realpath, rm, stat } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { backgroundContext } from '../../context/requestContext.js';
import type { Digest } from '../../digest/digest.js';
import { EMPTY_DIRECTORY_DIGEST } from '../../tree/directory.js';
import { treeFromPath } from '../../tree/hostTree.js';
import { materializeTree } from '../../tree/materialize.js';
import { sha256File } from './download.js';
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

const KIND = 'patch';

interface PatchConfig {
  path: string;
  stripLevel: number;
}

function parse(config: SourceConfig, location: string | undefined): PatchConfig {
  const where = location ?? '';
  checkKeys(config, KIND, ['path', 'strip-level'], where);
  const path = checkRelativePath(requireString(config, 'path', KIND, where), "patch source 'path'", location);
  const level = config['strip-level'];
  const text = level === undefined || level === null ? '1' : String(level).trim();
  if (!/^\d+$/.test(text))
    throw new SourceError(location, `patch source: 'strip-level' must be a number, found '${text}'`);
  return { path, stripLevel: Number(text) };
}

async function patchFile(config: PatchConfig, context: SourceContext): Promise<string> {
  const full = join(context.projectDir, config.path);
  const real = await realpath(full).catch(() => undefined);
  const project = await realpath(context.projectDir);
  if (!real || !(await stat(real)).isFile()) {
    throw new SourceError(context.location, `patch source: "${config.path}" is not a file in the project`);
  }
  if (!real.startsWith(project + sep)) {
    throw new SourceError(context.location, `patch source: "${config.path}" leads outside the project directory`);
  }
  return real;
}

function run(command: string, args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

export const patchSource: SourceKind = {
  kind: KIND,
  validate(config, location) {
    parse(config, location);
  },
  async key(config, context) {
    const parsed = parse(config, context.location);
    return {
      path: parsed.path,
      sha256: await sha256File(await patchFile(parsed, context)),
      'strip-level': parsed.stripLevel,
    };
  },
  async stage() {
    throw new Error('the patch source applies to the sources before it (stageOnto)');
  },
  async stageOnto(config, context, previous: Digest) {
    const parsed = parse(config, context.location);
    const file = await patchFile(parsed, context);
    if (previous.hash === EMPTY_DIRECTORY_DIGEST.hash) {
      throw new SourceError(
        context.location,
        `patch source ${parsed.path}: nothing to patch (no files staged before it)`,
      );
    }
    await mkdir(context.cacheDir, { recursive: true });
    const scratch = await mkdtemp(join(context.cacheDir, 'patch-'));
    try {
      const directory = join(scratch, 'tree');
      await materializeTree(backgroundContext(), context.cas, previous, directory);
      let result: { code: number | null; output: string };
      try {
        result = await run('patch', [`-p${parsed.stripLevel}`, '-i', file, '-d', directory]);
      } catch (error) {
        throw new SourceError(
          context.location,
          `patch source ${parsed.path}: cannot run patch: ${describeError(error)}`,
        );
      }
      if (result.code !== 0) {
        throw new SourceError(
          context.location,
          `patch source ${parsed.path}: patch failed (exit code ${result.code}):\n${result.output.trim()}`,
        );
      }
      return await treeFromPath(backgroundContext(), context.cas, directory, {
        digestFunction: context.digestFunction,
      });
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  },
};
