/**
 * Files named by URL and checked against their sha256 before use: what the
 * tar, zip and remote sources download.
 *
 * The URL goes through the project's aliases; for an aliased URL the
 * mirrors' URLs of that alias are tried first (BuildStream 2 projects), then
 * the alias's own. file:// URLs and plain paths (relative to the project) are
 * read in place; http(s) downloads are kept in <cacheDir>/<kind>/<sha256>,
 * only after they matched their ref, so a file is downloaded once.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describeError, localPathOf, type SourceContext, SourceError, translateUrl } from './sourceKind.js';

/** The sha256 of a file, in hex. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** The URLs to try for `url`, mirrors of its alias first. */
export function candidateUrls(url: string, context: SourceContext): string[] {
  const colon = url.indexOf(':');
  const alias = colon > 0 ? url.slice(0, colon) : undefined;
  const rest = colon > 0 ? url.slice(colon + 1) : '';
  const urls: string[] = [];
  if (alias !== undefined && Object.hasOwn(context.aliases, alias)) {
    for (const mirror of context.mirrors ?? []) {
      for (const prefix of mirror.aliases[alias] ?? []) urls.push(prefix + rest);
    }
  }
  urls.push(translateUrl(url, context.aliases));
  return [...new Set(urls)];
}

/**
 * A local path holding the file `url` names, verified against `ref` (a
 * sha256 in hex). Errors name the source (`KIND source URL`) and call the
 * file `noun` ('the tarball').
 */
export async function obtainVerified(
  url: string,
  ref: string,
  kind: string,
  context: SourceContext,
  noun = 'the file',
): Promise<string> {
  const { location } = context;
  const what = `${kind} source ${url}`;
  const failures: string[] = [];
  for (const candidate of candidateUrls(url, context)) {
    const local = localPathOf(candidate, context.projectDir);
    if (local !== undefined) {
      let actual: string;
      try {
        actual = await sha256File(local);
      } catch (error) {
        failures.push(`cannot read ${local}: ${describeError(error)}`);
        continue;
      }
      if (actual !== ref) {
        throw new SourceError(location, `${what}: sha256 mismatch: the ref expects ${ref} but ${noun} is ${actual}`);
      }
      return local;
    }
    if (!/^https?:/.test(candidate)) {
      failures.push(`unsupported URL scheme in ${candidate}`);
      continue;
    }
    const directory = join(context.cacheDir, kind);
    const cached = join(directory, ref);
    if (
      await stat(cached).then(
        () => true,
        () => false,
      )
    ) {
      if ((await sha256File(cached)) === ref) return cached;
      await rm(cached, { force: true });
    }
    try {
      return await download(candidate, ref, directory, cached, noun);
    } catch (error) {
      if (error instanceof MismatchError) throw new SourceError(location, `${what}: ${error.message}`);
      failures.push(describeError(error));
    }
  }
  throw new SourceError(location, `${what}: ${failures.join('; ')}`);
}

class MismatchError extends Error {}

async function download(url: string, ref: string, directory: string, cached: string, noun: string): Promise<string> {
  await mkdir(directory, { recursive: true });
  const temporary = join(directory, `.download-${randomUUID()}`);
  try {
    let response: Response;
    try {
      response = await fetch(url);
    } catch (error) {
      throw new Error(`cannot download ${url}: ${describeError(error)}`);
    }
    if (!response.ok || !response.body) throw new Error(`downloading ${url} failed: HTTP ${response.status}`);
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
    if (actual !== ref) throw new MismatchError(`sha256 mismatch: the ref expects ${ref} but ${noun} is ${actual}`);
    await rename(temporary, cached);
    return cached;
  } finally {
    await rm(temporary, { force: true });
  }
}
