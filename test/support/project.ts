/**
 * Helpers shared by this directory's tests: throwaway project directories
 * and assertions that an error names the expected file and line.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ProjectError } from '../../src/metabuild/project/errors.js';

const created: string[] = [];

/** Writes `files` (path -> content) into a new temporary directory and returns it. */
export async function writeProject(files: Record<string, string>): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'granary-project-'));
  created.push(root);
  for (const [path, content] of Object.entries(files)) {
    await mkdir(dirname(join(root, path)), { recursive: true });
    await writeFile(join(root, path), content);
  }
  return root;
}

/** Removes every directory made by writeProject; call from an `after` hook. */
export async function removeProjects(): Promise<void> {
  await Promise.all(created.splice(0).map((root) => rm(root, { recursive: true, force: true })));
}

function check(error: unknown, file: string, line: number, pattern: RegExp): true {
  assert.ok(error instanceof ProjectError, `expected a ProjectError, got ${String(error)}`);
  assert.equal(error.file, file, error.message);
  assert.equal(error.line, line, error.message);
  assert.ok(error.message.startsWith(`${file} line ${line}: `), error.message);
  assert.match(error.message, pattern);
  return true;
}

export function throwsAt(fn: () => unknown, file: string, line: number, pattern: RegExp): void {
  assert.throws(fn, (error) => check(error, file, line, pattern));
}

export async function rejectsAt(promise: Promise<unknown>, file: string, line: number, pattern: RegExp): Promise<void> {
  await assert.rejects(promise, (error) => check(error, file, line, pattern));
}
