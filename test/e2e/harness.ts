/**
 * The end-to-end helpers' old address, kept so that suites written against it keep
 * compiling while they move: the helpers live in test/support/ (farm.ts for farms,
 * granaryProcess.ts, bazel.ts, bazelWorkspace.ts, commands.ts, scratch.ts, repository.ts).
 * New suites import from there.
 */
import { bazelWorkspace } from '../support/bazelWorkspace.js';

export { type BazelRun, bazel, bazelAsync, processSummary } from '../support/bazel.js';
export { hasCommand, requireCommand, run } from '../support/commands.js';
export { type GranaryProcess, startGranary } from '../support/granaryProcess.js';
export { GRANARY_BIN, REPO_ROOT } from '../support/repository.js';
export { removeQuietly, scratchDirectory } from '../support/scratch.js';

/**
 * A copy of a fixture workspace at `into/name`. The one Bazel workspace was once called
 * 'cc-workspace' (Bazel 4.2.3); use bazelWorkspace() from test/support/bazelWorkspace.ts.
 */
export function copyFixture(name: 'cc-workspace', into: string): string {
  return bazelWorkspace(4, into, name);
}
