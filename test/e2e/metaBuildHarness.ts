/**
 * The meta-build helpers' old address, kept so that suites written against it keep
 * compiling while they move: the helpers live in test/support/ (sysroot.ts,
 * buildStreamProjects.ts, granaryClient.ts, treeListing.ts, commands.ts, scratch.ts).
 * New suites import from there.
 */
export { helloProject } from '../support/buildStreamProjects.js';
export { type CommandRun, runCommand } from '../support/commands.js';
export { clientEnvironment, granary, stateLine } from '../support/granaryClient.js';
export { writeFiles } from '../support/scratch.js';
export { makeSysroot, SYSROOT_SCRIPT, type Sysroot, sysrootUnavailable } from '../support/sysroot.js';
export { describeTree, treeDifferences } from '../support/treeListing.js';
