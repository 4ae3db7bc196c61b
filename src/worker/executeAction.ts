/**
 * Executes one REAPI Action on this worker: reads the Action and Command, stages
 * the input root from the CAS through the local cache, runs the command in the
 * chosen sandbox with its timeout, collects and uploads outputs, stdout and stderr,
 * and returns the ExecuteResponse. Action-level outcomes (missing inputs, timeouts,
 * bad requests, cancellation) come back as the response's status, never as a throw;
 * the work directory is always removed.
 */
import { appendFile, chmod, mkdir, mkdtemp, readdir, realpath, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { backgroundContext, type RequestContext } from '../context/requestContext.js';
import { type Digest, type DigestFunction, digestFunctionOf, digestOf, parseDigest, SHA256 } from '../digest/digest.js';
import { INSTALL_BUBBLEWRAP } from '../execution/sandboxProperties.js';
import {
  Action,
  type ActionResult,
  Command,
  type ExecutedActionMetadata,
  type ExecuteResponse,
  type Platform_Property,
} from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import type { InlineBlob } from '../gen/granary/worker/v1/lease.js';
import { OK_STATUS, toRpcStatus } from '../grpc/statusCodec.js';
import type { BlobStore } from '../storage/blobStore.js';
import { readAndHashFile } from '../tree/hostTree.js';
import { uploadMissing } from '../tree/upload.js';
import { formatSize } from '../util/size.js';
import { Code, failedPrecondition, invalidArgument, StatusError, toStatusError } from '../util/status.js';
import { msFromDuration, nowMs, timestampFromMs } from '../util/time.js';
import { type ActionLimits, actionLimitsFor, asksForLimits } from './actionLimits.js';
import { giveDirectoriesTo } from './actionUser.js';
import { type ActionCgroups, type ActionGroup, commandInGroup } from './cgroups/actionCgroups.js';
import { InlineBlobStore } from './inlineBlobStore.js';
import { type LocalCache, missingBlobsError } from './localCache.js';
import { collectOutputs, createOutputParents, KEEP_OUTPUT_FILE_BYTES } from './outputs.js';
import { ensureDirectoryInRoot, type RootSemantics, resolveInRoot, rootRelativePath } from './paths.js';
import type { PersistentSandbox, SandboxPool } from './persistentSandbox.js';
import { type RunOutcome, runCommand } from './runner.js';
import {
  type ActionUser,
  assertSandboxUsable,
  buildSandboxCommand,
  isExecutableFile,
  type SandboxProfile,
  visibility,
} from './sandbox.js';
import type { SharedCas } from './sharedCas.js';
import { type StagedInputRoot, stageInputRoot } from './staging.js';

export type { SandboxProfile } from './sandbox.js';

/** What to run: an Action named by digest (read from the CAS), or the Action itself. */
export interface ExecuteActionRequest {
  /** The Action's digest, when the lease named it. */
  actionDigest?: Digest;
  /**
   * The Action, when the lease carried it (a Granary server sends it, with the
   * timeout it decided in `timeout`, so the server's default reaches the worker).
   */
  action?: Action;
  /** Blobs the lease carried along (Command, Directories, small inputs): used instead of fetching, once verified. */
  blobs?: readonly InlineBlob[];
  instanceName?: string;
}

export interface ExecuteActionDeps {
  /** The remote CAS. */
  cas: BlobStore;
  cache: LocalCache;
  /** The farm's CAS on this machine, to hard-link plain inputs from (see sharedCas.ts). */
  sharedCas?: SharedCas;
  /** Where per-action directories are made (and removed). */
  workDirectory: string;
  /**
   * The sandbox profile, or a function choosing it from the Action's platform
   * properties (Action.platform, else the legacy Command.platform), such as
   * sandboxProfileFor.
   */
  sandbox: SandboxProfile | ((properties: readonly Platform_Property[]) => SandboxProfile);
  /** The execution root (system directories for host-tools) an action's platform selects; '/' when none. */
  systemRootFor?: (properties: readonly Platform_Property[]) => string;
  /** Timeout of actions that set none and whose server did not say (a lease carrying the Action always does). */
  defaultTimeoutMs: number;
  /** Actions asking for a longer timeout are rejected with INVALID_ARGUMENT. */
  maximumTimeoutMs?: number;
  signal?: AbortSignal;
  workerName: string;
  bwrapPath?: string;
  /** When the worker is root: the unprivileged user host-tools commands run as (see sandbox.ts). */
  actionUser?: ActionUser;
  /** Time between SIGTERM and SIGKILL on timeout or cancellation; default 2 s. */
  killGraceMs?: number;
  /**
   * Per-action control groups, when the worker has usable ones, with the most an
   * action may ask for (and what it gets when it asks for nothing). Without them an
   * action asking for limits is refused with FAILED_PRECONDITION.
   */
  limits?: { cgroups: ActionCgroups; maxima: ActionLimits };
  /** Told about problems that do not change the action's outcome (a group that could not be removed). */
  log?: (message: string) => void;
  /**
   * Takes the removal of the action's directory, so that the result is reported
   * without waiting for it (the caller bounds and awaits these). Without it the
   * removal is awaited before returning.
   */
  deferCleanup?: (removal: Promise<void>) => void;
  /**
   * The slots' persistent sandboxes (persistentSandbox.ts): host-tools actions run
   * as the action user in one of these instead of a sandbox of their own.
   */
  sandboxes?: SandboxPool;
}

const TRUE_VALUES = new Set(['true', '1', 'yes', 'on']);
/** Outputs this small in all are sent in one batch without a FindMissingBlobs first (one round trip less). */
const SEND_OUTPUTS_WITHOUT_ASKING_BYTES = 256 * 1024;
/** The processes bubblewrap itself keeps in the action's group (its monitor and the namespace's init). */
const SANDBOX_PROCESSES = 2;
/** What a shell reports for a command killed by SIGKILL, as the OOM killer does. */
const KILLED_EXIT_CODE = 128 + 9;

/**
 * The sandbox profile an action's platform asks for: 'hermetic' (the input root is
 * '/') for `sandbox=hermetic`, `chroot=true`, or BuildStream's `unixUID`/`unixGID`
 * properties (which only make sense when the input root is the whole file system);
 * otherwise `fallback`, 'host-tools' by default. Never 'none': running unsandboxed
 * is the worker operator's choice, not the client's.
 */
export function sandboxProfileFor(
  properties: readonly Platform_Property[],
  fallback: SandboxProfile = 'host-tools',
): SandboxProfile {
  let profile = fallback;
  for (const { name, value } of properties) {
    const lowered = value.toLowerCase();
    if (name === 'sandbox' && (lowered === 'hermetic' || lowered === 'chroot')) return 'hermetic';
    if (name === 'sandbox' && lowered === 'host-tools') profile = 'host-tools';
    if (name === 'chroot' && TRUE_VALUES.has(lowered)) return 'hermetic';
    if (name === 'unixUID' || name === 'unixGID') return 'hermetic';
  }
  return profile;
}

/** Whether the platform picks the sandbox profile or an execution root itself (see sandboxProfileFor). */
function choosesSandbox(properties: readonly Platform_Property[], systemRoot: string): boolean {
  if (systemRoot !== '/') return true;
  return properties.some(({ name }) => ['sandbox', 'chroot', 'unixUID', 'unixGID'].includes(name));
}

/** Whether a staged input root has an executable /bin/sh of its own (following its symlinks as a chroot would). */
async function isRootFileSystem(root: string): Promise<boolean> {
  const shell = await resolveInRoot(root, 'bin/sh', 'chroot', true);
  return shell !== undefined && (await isExecutableFile(shell));
}

class Cancelled extends Error {}

export async function executeAction(request: ExecuteActionRequest, deps: ExecuteActionDeps): Promise<ExecuteResponse> {
  const workerStartMs = nowMs();
  let directory: string | undefined;
  let response: ExecuteResponse;
  const groups: ActionGroup[] = [];
  let slot = deps.actionUser ? deps.sandboxes?.acquire() : undefined;
  try {
    if (slot && !(await slot.ready)) {
      deps.sandboxes?.release(slot);
      slot = undefined;
    }
    directory = await makeActionDirectory(slot ? slot.directory : deps.workDirectory);
    // The persistent sandbox binds the slot's directory: its action user passes through this one.
    if (slot) await chmod(directory, 0o711);
    response = await executeIn(directory, request, deps, workerStartMs, groups, slot);
  } catch (error) {
    response = failure(deps.signal?.aborted || error instanceof Cancelled ? cancelledError() : toStatusError(error));
  } finally {
    if (directory !== undefined) {
      // Out of the slot's directory before the slot's next action, which would see it there.
      const leftover = slot ? await moveOutOfSlot(directory) : directory;
      const removal = Promise.all([
        leftover === undefined ? undefined : removeTree(leftover),
        ...groups.map((group) => removeGroup(group, deps)),
      ]).then(() => undefined);
      if (deps.deferCleanup) deps.deferCleanup(removal);
      else await removal;
    }
    if (slot) deps.sandboxes?.release(slot);
  }
  const metadata = response.result?.executionMetadata;
  if (metadata) metadata.workerCompletedTimestamp = timestampFromMs(nowMs());
  return response;
}

async function executeIn(
  directory: string,
  request: ExecuteActionRequest,
  deps: ExecuteActionDeps,
  workerStartMs: number,
  groups: ActionGroup[],
  slot: PersistentSandbox | undefined,
): Promise<ExecuteResponse> {
  const { cas, cache, signal } = deps;
  // The worker's own calls: cancellation of the action is `signal`, checked between steps.
  const context = backgroundContext(request.instanceName ?? '');
  // Where inputs come from: the lease's blobs, then the CAS. Outputs go to the CAS.
  const source = request.blobs && request.blobs.length > 0 ? new InlineBlobStore(cas, request.blobs) : cas;
  const checkCancelled = () => {
    if (signal?.aborted) throw new Cancelled();
  };
  const inputFetchStartMs = nowMs();
  const { action, fn } = await actionOf(context, request, source, cache);
  const commandDigest = parseDigest(action.commandDigest, fn, 'command_digest');
  const inputRootDigest = parseDigest(action.inputRootDigest, fn, 'input_root_digest');
  const command = decode(Command, await readMessage(context, source, cache, commandDigest, 'Command'), 'Command');
  const timeoutMs = timeoutOf(action, deps);
  const platform = action.platform ?? command.platform;
  let profile = typeof deps.sandbox === 'function' ? deps.sandbox(platform?.properties ?? []) : deps.sandbox;
  const systemRoot = deps.systemRootFor?.(platform?.properties ?? []) ?? '/';
  const limits = limitsOf(platform?.properties ?? [], deps);
  await assertSandboxUsable(profile, deps.bwrapPath);
  const workingDirectory = rootRelativePath(command.workingDirectory, '', 'working_directory');
  checkCancelled();

  const root = join(directory, 'root');
  let staged: StagedInputRoot | undefined;
  let outcome: RunOutcome;
  const stdoutPath = join(directory, 'stdout');
  const stderrPath = join(directory, 'stderr');
  try {
    staged = await stageInputRoot(context, {
      cas: source,
      cache,
      sharedCas: deps.sharedCas,
      rootDigest: inputRootDigest,
      destination: root,
      signal,
    });
    const inputFetchCompletedMs = nowMs();
    checkCancelled();
    // BuildStream 2 sends a whole root file system as the input root and expects it
    // to be '/' (its install root is an absolute path), with no platform property
    // saying so: an input root with its own /bin/sh gets the hermetic sandbox unless
    // the platform chose a profile or an execution root, and never runs unsandboxed.
    if (profile !== 'hermetic' && !choosesSandbox(platform?.properties ?? [], systemRoot)) {
      if (await isRootFileSystem(root)) {
        if (profile === 'none') {
          throw failedPrecondition(
            'the input root is a whole root file system (it has /bin/sh), to be run as / in a sandbox; ' +
              `this worker runs actions unsandboxed and refuses it; ${INSTALL_BUBBLEWRAP}`,
            [{ type: 'SANDBOX', subject: 'bin/sh', description: 'needs a worker with the bubblewrap sandbox' }],
          );
        }
        profile = 'hermetic';
      }
    }
    const semantics: RootSemantics = profile === 'hermetic' ? 'chroot' : 'host';
    await ensureDirectoryInRoot(root, workingDirectory, semantics);
    await createOutputParents(root, command, semantics);
    if (deps.actionUser && profile === 'host-tools') await giveDirectoriesTo(root, deps.actionUser);
    const { plan, program, inSandbox } = await buildSandboxCommand({
      profile,
      execRoot: root,
      workingDirectory,
      arguments: command.arguments,
      environment: command.environmentVariables,
      bwrapPath: deps.bwrapPath,
      systemRoot,
      actionUser: profile === 'none' ? undefined : deps.actionUser,
    });
    checkCancelled();
    if (plan === undefined) {
      await appendFile(stdoutPath, '');
      await appendFile(stderrPath, `granary: ${program}: command not found\n`);
      const now = nowMs();
      outcome = { exitCode: 127, timedOut: false, cancelled: false, startMs: now, endMs: now };
    } else {
      // The slot's persistent sandbox runs host-tools commands (see persistentSandbox.ts).
      const persistent = slot?.usable && inSandbox && profile === 'host-tools' && systemRoot === '/';
      const run = persistent ? inSandbox : plan;
      let group: ActionGroup | undefined;
      // The slot's sandbox keeps its group from one action to the next (slotGroup.ts); others get one each.
      const slotGroup =
        persistent && slot && deps.limits ? slot.slotGroup(deps.limits.cgroups, deps.limits.maxima) : undefined;
      if (deps.limits && limits) {
        if (slotGroup) {
          group = await slotGroup.groupFor(limits);
        } else {
          const sandboxed = profile === 'none' ? 0 : SANDBOX_PROCESSES;
          group = await deps.limits.cgroups.create(basename(directory), {
            ...limits,
            maxProcesses: limits.maxProcesses + sandboxed,
          });
          groups.push(group);
        }
      }
      // Both create the two output files (so they exist even if the command cannot start).
      const common = { stdoutPath, stderrPath, timeoutMs, signal, killGraceMs: deps.killGraceMs };
      if (persistent && slot) {
        // The slot's helper forks the command inside the group itself: no shell to enter it.
        const limited = group && limits ? { group, maxProcesses: limits.maxProcesses } : undefined;
        outcome = await slot.run({ ...run, ...common }, limited);
      } else {
        outcome = await runCommand({ ...(group ? commandInGroup(run, group.procsFiles) : run), ...common });
      }
      if (outcome.spawnError) {
        await appendFile(stderrPath, `granary: cannot run ${run.file}: ${outcome.spawnError.message}\n`);
        outcome.exitCode = 127;
        outcome.stderrBytes = undefined;
      }
      if (group && limits) {
        const oomKills = slotGroup ? slotGroup.oomKillsSinceGroupFor() : group.oomKillCount();
        await reportOutOfMemory(oomKills, limits, outcome, stderrPath);
      }
    }
    await staged.evictModifiedInputs();
    staged = undefined;
    checkCancelled();

    const uploadStartMs = nowMs();
    const collected = await collectOutputs({
      root,
      command,
      semantics,
      digestFunction: fn,
      sandboxView: visibility(profile, root, systemRoot),
    });
    const [stdout, stderr] = await Promise.all([
      standardStream(stdoutPath, outcome.stdoutBytes, fn),
      standardStream(stderrPath, outcome.stderrBytes, fn),
    ]);
    const stdoutDigest = stdout.digest;
    const stderrDigest = stderr.digest;
    await uploadMissing(
      context,
      cas,
      [...collected.uploads, { ...stdout, path: stdoutPath }, { ...stderr, path: stderrPath }],
      { skipFindMissingBelowBytes: SEND_OUTPUTS_WITHOUT_ASKING_BYTES },
    );
    const uploadCompletedMs = nowMs();

    const metadata: ExecutedActionMetadata = {
      worker: deps.workerName,
      queuedTimestamp: undefined,
      workerStartTimestamp: timestampFromMs(workerStartMs),
      workerCompletedTimestamp: undefined,
      inputFetchStartTimestamp: timestampFromMs(inputFetchStartMs),
      inputFetchCompletedTimestamp: timestampFromMs(inputFetchCompletedMs),
      executionStartTimestamp: timestampFromMs(outcome.startMs),
      executionCompletedTimestamp: timestampFromMs(outcome.endMs),
      virtualExecutionDuration: undefined,
      outputUploadStartTimestamp: timestampFromMs(uploadStartMs),
      outputUploadCompletedTimestamp: timestampFromMs(uploadCompletedMs),
      auxiliaryMetadata: [],
    };
    const result: ActionResult = {
      ...collected.fields,
      exitCode: outcome.exitCode,
      stdoutRaw: Buffer.alloc(0),
      stdoutDigest,
      stderrRaw: Buffer.alloc(0),
      stderrDigest,
      executionMetadata: metadata,
    };
    const status = outcome.timedOut
      ? { code: Code.DEADLINE_EXCEEDED, message: `the action exceeded its timeout of ${timeoutMs} ms`, details: [] }
      : OK_STATUS;
    return { result, cachedResult: false, status, serverLogs: {}, message: '' };
  } finally {
    // Also after failures: an action that ran may have written into cached inputs.
    if (staged) await staged.evictModifiedInputs().catch(() => undefined);
  }
}

/** stdout or stderr: not read at all when the run says it is empty; read once (hashed and kept) when small. */
function standardStream(
  path: string,
  sizeBytes: number | undefined,
  fn: DigestFunction,
): Promise<{ digest: Digest; data?: Buffer }> {
  if (sizeBytes === 0) return Promise.resolve({ digest: digestOf(Buffer.alloc(0), fn) });
  return readAndHashFile(path, fn, KEEP_OUTPUT_FILE_BYTES);
}

async function readMessage(
  context: RequestContext,
  cas: BlobStore,
  cache: LocalCache,
  digest: Digest,
  what: string,
): Promise<Buffer> {
  const data = await cache.getBuffer(context, cas, digest);
  if (data === undefined) throw missingBlobsError([digest], what);
  return data;
}

/** The Action to run and its digest function (that of the digest naming it, else of its input root). */
async function actionOf(
  context: RequestContext,
  request: ExecuteActionRequest,
  cas: BlobStore,
  cache: LocalCache,
): Promise<{ action: Action; fn: DigestFunction }> {
  if (request.action) {
    const named = request.action.inputRootDigest ?? request.action.commandDigest;
    return { action: request.action, fn: named ? digestFunctionOf(named) : SHA256 };
  }
  if (!request.actionDigest) throw invalidArgument('the lease names no Action');
  const fn = digestFunctionOf(request.actionDigest);
  const actionDigest = parseDigest(request.actionDigest, fn, 'action_digest');
  return { action: decode(Action, await readMessage(context, cas, cache, actionDigest, 'Action'), 'Action'), fn };
}

function decode<T>(type: { decode(input: Uint8Array): T }, data: Buffer, what: string): T {
  try {
    return type.decode(data);
  } catch (error) {
    throw invalidArgument(`the ${what} is not a valid ${what} message: ${(error as Error).message}`);
  }
}

function timeoutOf(action: Action, deps: ExecuteActionDeps): number {
  const requested = action.timeout ? msFromDuration(action.timeout) : 0;
  if (requested < 0)
    throw invalidArgument('Action.timeout is negative', [{ field: 'timeout', description: 'negative' }]);
  if (requested === 0) return deps.defaultTimeoutMs;
  if (deps.maximumTimeoutMs !== undefined && requested > deps.maximumTimeoutMs) {
    throw invalidArgument(
      `Action.timeout ${requested} ms exceeds this worker's maximum of ${deps.maximumTimeoutMs} ms`,
      [{ field: 'timeout', description: 'exceeds the maximum timeout' }],
    );
  }
  return requested;
}

/** The action's limits when the worker enforces them; FAILED_PRECONDITION for limits it cannot enforce. */
function limitsOf(properties: readonly Platform_Property[], deps: ExecuteActionDeps): ActionLimits | undefined {
  if (deps.limits) return actionLimitsFor(properties, deps.limits.maxima);
  if (!asksForLimits(properties)) return undefined;
  throw failedPrecondition(
    'the action asks for resource limits and this worker cannot enforce them (no usable cgroups)',
    [{ type: 'LIMIT', subject: 'resource-limits', description: 'needs a worker with cgroups' }],
  );
}

/**
 * When the kernel's OOM killer struck in the action's group, says so on stderr and
 * reports the exit code of a killed process (137), unless the command still
 * succeeded (a process it started was killed and it carried on).
 */
async function reportOutOfMemory(
  oomKills: number,
  limits: ActionLimits,
  outcome: RunOutcome,
  stderrPath: string,
): Promise<void> {
  if (oomKills === 0) return;
  outcome.stderrBytes = undefined; // What the run saw of stderr is no longer its size.
  const limit = formatSize(limits.memoryBytes);
  if (outcome.exitCode === 0) {
    await appendFile(
      stderrPath,
      `granary: a process of the action was killed: it exceeded the memory limit of ${limit}\n`,
    );
    return;
  }
  outcome.exitCode = KILLED_EXIT_CODE;
  await appendFile(stderrPath, `granary: the action was killed: it exceeded its memory limit of ${limit}\n`);
}

/** Removes an action's group, saying so when it stays (it holds no memory once empty, but it is a leak). */
async function removeGroup(group: ActionGroup, deps: ExecuteActionDeps): Promise<void> {
  await group.remove().catch((error: Error) => deps.log?.(`granary worker: ${error.message}`));
}

function cancelledError(): StatusError {
  return new StatusError(Code.CANCELLED, 'the execution was cancelled');
}

function failure(error: StatusError): ExecuteResponse {
  return { result: undefined, cachedResult: false, status: toRpcStatus(error), serverLogs: {}, message: error.message };
}

/** Real paths of work directories already made, so that each action costs one mkdtemp. */
const realWorkDirectories = new Map<string, string>();

/** A new directory for one action, by its real path (the sandbox binds it at that path). */
async function makeActionDirectory(workDirectory: string): Promise<string> {
  const known = realWorkDirectories.get(workDirectory);
  if (known !== undefined) {
    try {
      return await mkdtemp(join(known, 'action-'));
    } catch {
      realWorkDirectories.delete(workDirectory); // Removed meanwhile (or replaced): make it again.
    }
  }
  await mkdir(workDirectory, { recursive: true });
  const real = await realpath(workDirectory);
  realWorkDirectories.set(workDirectory, real);
  return mkdtemp(join(real, 'action-'));
}

/**
 * Moves an action's directory from its slot's directory to the slot's parent and
 * returns where it is now, to be removed there; if it cannot be moved, removes it
 * here and now and returns undefined.
 */
async function moveOutOfSlot(directory: string): Promise<string | undefined> {
  const slotDirectory = dirname(directory);
  const outside = join(dirname(slotDirectory), `${basename(slotDirectory)}-${basename(directory)}`);
  try {
    await rename(directory, outside);
    return outside;
  } catch {
    await removeTree(directory);
    return undefined;
  }
}

/** Removes a directory tree, first making directories writable if the action locked them. */
async function removeTree(path: string): Promise<void> {
  try {
    await rm(path, { recursive: true, force: true });
  } catch {
    await makeWritable(path);
    await rm(path, { recursive: true, force: true }).catch(() => undefined);
  }
}

async function makeWritable(path: string): Promise<void> {
  await chmod(path, 0o700).catch(() => undefined);
  const entries = await readdir(path, { withFileTypes: true }).catch(() => []);
  for (const entry of entries) if (entry.isDirectory()) await makeWritable(join(path, entry.name));
}
