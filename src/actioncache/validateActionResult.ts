/**
 * Checks the digests and paths of an ActionResult that a client wants to store, so
 * that malformed results are rejected with INVALID_ARGUMENT instead of poisoning
 * the cache.
 */
import { type DigestFunction, parseDigest } from '../digest/digest.js';
import type { ActionResult } from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import { invalidArgument } from '../util/status.js';

export function validateActionResult(result: ActionResult, fn: DigestFunction): void {
  result.outputFiles.forEach((file, i) => {
    checkPath(file.path, `action_result.output_files[${i}].path`);
    parseDigest(file.digest, fn, `action_result.output_files[${i}].digest`);
  });
  result.outputDirectories.forEach((dir, i) => {
    checkPath(dir.path, `action_result.output_directories[${i}].path`, true);
    parseDigest(dir.treeDigest, fn, `action_result.output_directories[${i}].tree_digest`);
  });
  for (const [field, digest] of [
    ['stdout_digest', result.stdoutDigest],
    ['stderr_digest', result.stderrDigest],
  ] as const) {
    if (digest) parseDigest(digest, fn, `action_result.${field}`);
  }
}

function checkPath(path: string, field: string, allowEmpty = false): void {
  if (path === '' && allowEmpty) return;
  if (path === '' || path.startsWith('/') || path.includes('\0')) {
    throw invalidArgument(`${field}: "${path}" is not a relative path`, [{ field, description: 'invalid path' }]);
  }
}
