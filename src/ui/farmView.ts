/**
 * What the web UI shows, as plain JSON-ready objects read from the scheduler's
 * admin view and the CAS: operation summaries (with a status a person filters
 * by), an action's whole story (its Action and Command, every operation that
 * ran it, the latest result with stdout and stderr), workers with their leases,
 * directories and blobs by digest. The /api routes return these; nothing here
 * knows HTTP or HTML.
 */
import { backgroundContext, type RequestContext } from '../context/requestContext.js';
import { type Digest, digestFunctionOf, digestOf, formatDigest, parseDigest } from '../digest/digest.js';
import type { OperationQuery } from '../execution/operationStore.js';
import type { SchedulerAdmin, WorkerView } from '../execution/scheduler.js';
import type { OperationRecord, Stage } from '../execution/types.js';
import {
  Action,
  type ActionResult,
  Command,
  Directory,
  type Platform,
  Tree,
} from '../gen/build/bazel/remote/execution/v2/remote_execution.js';
import { workerPhasesMs } from '../observability/finishedAction.js';
import type { BlobStore } from '../storage/blobStore.js';
import { decodeDirectory } from '../tree/directory.js';

/** What a person filters the operation list by: where it stands, and how it ended. */
export type OperationStatus = 'queued' | 'executing' | 'succeeded' | 'failed' | 'cached';
export const OPERATION_STATUSES: readonly OperationStatus[] = ['queued', 'executing', 'succeeded', 'failed', 'cached'];

export interface OperationSummary {
  readonly name: string;
  /** `HASH/SIZE` of the action. */
  readonly action: string;
  readonly instanceName: string;
  readonly stage: Stage;
  readonly status: OperationStatus;
  readonly queuedAtMs: number;
  readonly startedAtMs?: number;
  readonly completedAtMs?: number;
  /** The worker that ran it (as it named itself), or the session holding it. */
  readonly worker?: string;
  readonly attempts: number;
  readonly tool?: string;
  readonly toolVersion?: string;
  readonly invocation?: string;
  readonly mnemonic?: string;
  readonly target?: string;
  readonly exitCode?: number;
  readonly cacheHit: boolean;
  /** The status message of an operation that ended with an error. */
  readonly error?: string;
}

export function statusOf(operation: OperationRecord): OperationStatus {
  if (operation.stage === 'QUEUED') return 'queued';
  if (operation.stage === 'EXECUTING') return 'executing';
  const response = operation.response;
  if ((response?.status?.code ?? 0) !== 0 || (response?.result?.exitCode ?? 0) !== 0) return 'failed';
  return response?.cachedResult ? 'cached' : 'succeeded';
}

export function summarizeOperation(operation: OperationRecord): OperationSummary {
  const client = operation.request.clientMetadata ?? {};
  const response = operation.response;
  const code = response?.status?.code ?? 0;
  return {
    name: operation.name,
    action: formatDigest(operation.request.actionDigest),
    instanceName: operation.request.instanceName,
    stage: operation.stage,
    status: statusOf(operation),
    queuedAtMs: operation.queuedAtMs,
    startedAtMs: operation.startedAtMs,
    completedAtMs: operation.completedAtMs,
    worker: response?.result?.executionMetadata?.worker || operation.workerId,
    attempts: operation.attempts,
    tool: client.toolName,
    toolVersion: client.toolVersion,
    invocation: client.toolInvocationId,
    mnemonic: client.actionMnemonic,
    target: client.targetId,
    exitCode: response?.result?.exitCode,
    cacheHit: response?.cachedResult ?? false,
    error: code !== 0 ? response?.status?.message || `status ${code}` : undefined,
  };
}

/** How the operation list is filtered. */
export interface OperationFilter {
  readonly status?: OperationStatus;
  readonly invocationId?: string;
  readonly toolName?: string;
  readonly workerId?: string;
  /** Only actions with this digest. */
  readonly action?: Digest;
  /** At most this many, newest first. */
  readonly limit: number;
}

/** Operations scanned per listing at most (the store keeps the recent ones). */
const MAXIMUM_SCANNED = 50_000;

/** The newest operations matching the filter, newest first. */
export async function listOperations(
  context: RequestContext,
  admin: SchedulerAdmin,
  filter: OperationFilter,
  visible: (operation: OperationRecord) => boolean = () => true,
): Promise<{ operations: OperationSummary[]; scanned: number; more: boolean }> {
  const found = await findOperations(context, admin, filter, visible);
  return { ...found, operations: found.operations.map(summarizeOperation) };
}

/** The records behind listOperations. */
async function findOperations(
  context: RequestContext,
  admin: SchedulerAdmin,
  filter: OperationFilter,
  visible: (operation: OperationRecord) => boolean,
): Promise<{ operations: OperationRecord[]; scanned: number; more: boolean }> {
  const stage: Stage | undefined =
    filter.status === 'queued' ? 'QUEUED' : filter.status === 'executing' ? 'EXECUTING' : filter.status && 'COMPLETED';
  const query: OperationQuery = {
    stage,
    invocationId: filter.invocationId || undefined,
    toolName: filter.toolName || undefined,
    workerId: filter.workerId || undefined,
    pageSize: 1000,
  };
  const matching: OperationRecord[] = [];
  let scanned = 0;
  let pageToken = '';
  do {
    const page = await admin.operations(context, { ...query, pageToken: pageToken || undefined });
    scanned += page.operations.length;
    for (const operation of page.operations) {
      if (filter.status && statusOf(operation) !== filter.status) continue;
      if (filter.action && formatDigest(operation.request.actionDigest) !== formatDigest(filter.action)) continue;
      if (!visible(operation)) continue;
      matching.push(operation);
    }
    // Oldest first: only the newest `limit` are kept as the pages go by.
    if (matching.length > filter.limit * 2) matching.splice(0, matching.length - filter.limit);
    pageToken = page.nextPageToken;
  } while (pageToken !== '' && scanned < MAXIMUM_SCANNED);
  return { operations: matching.slice(-filter.limit).reverse(), scanned, more: matching.length > filter.limit };
}

/** Parses `HASH/SIZE` (as in links); throws a StatusError (INVALID_ARGUMENT) otherwise. */
export function parseDigestPath(text: string): Digest {
  const match = /^([0-9a-f]+)\/(\d+)$/.exec(text);
  return parseDigest(
    match ? { hash: match[1] as string, sizeBytes: Number(match[2]) } : undefined,
    undefined,
    'digest',
  );
}

export interface DigestView {
  readonly hash: string;
  readonly sizeBytes: number;
}

function digestView(digest: { hash: string; sizeBytes: number } | undefined): DigestView | undefined {
  return digest && digest.hash !== '' ? { hash: digest.hash, sizeBytes: digest.sizeBytes } : undefined;
}

function platformView(platform: Platform | undefined): { name: string; value: string }[] {
  return (platform?.properties ?? []).map((p) => ({ name: p.name, value: p.value }));
}

/** A text blob as the UI shows it: the first bytes as text, or a note that it is binary. */
export interface TextView {
  readonly digest?: DigestView;
  readonly sizeBytes: number;
  readonly text: string;
  /** Only the first `text` bytes are shown. */
  readonly truncated: boolean;
  /** Not UTF-8 text: `text` is empty, download it instead. */
  readonly binary: boolean;
  /** Named by the result but gone from the CAS. */
  readonly missing?: boolean;
}

/** Bytes of a blob shown inline at most. */
export const MAXIMUM_SHOWN_BYTES = 256 * 1024;

export function textView(data: Buffer, sizeBytes: number, digest?: DigestView): TextView {
  const shown = data.subarray(0, MAXIMUM_SHOWN_BYTES);
  const truncated = sizeBytes > shown.length;
  let text: string;
  try {
    // A cut may split a character: only the complete part must decode.
    text = new TextDecoder('utf-8', { fatal: true }).decode(truncated ? trimPartialCharacter(shown) : shown);
  } catch {
    return { digest, sizeBytes, text: '', truncated, binary: true };
  }
  const binary = text.includes('\u0000');
  return { digest, sizeBytes, text: binary ? '' : text, truncated, binary };
}

function trimPartialCharacter(data: Buffer): Buffer {
  const end = data.length;
  // Step back over continuation bytes to the start of the last character, and drop it.
  for (let back = 1; back <= 4 && end - back >= 0; back++) {
    const byte = data[end - back] as number;
    if ((byte & 0xc0) !== 0x80) {
      const length = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : byte >= 0xc0 ? 2 : 1;
      return length > back ? data.subarray(0, end - back) : data;
    }
  }
  return data;
}

/** Reads at most `maximumBytes` of a blob; undefined when it is not in the CAS. */
export async function readPrefix(
  context: RequestContext,
  cas: BlobStore,
  digest: Digest,
  maximumBytes: number,
): Promise<Buffer | undefined> {
  if (digest.sizeBytes === 0) return Buffer.alloc(0);
  const blob = await cas.get(context, digest);
  if (!blob) return undefined;
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of blob.read(0, Math.min(maximumBytes, blob.sizeBytes))) {
    chunks.push(chunk);
    length += chunk.length;
  }
  return Buffer.concat(chunks, length);
}

/** A blob by digest as text (for the file viewer); undefined when it is not in the CAS. */
export async function blobText(context: RequestContext, cas: BlobStore, digest: Digest): Promise<TextView | undefined> {
  const data = await readPrefix(context, cas, digest, MAXIMUM_SHOWN_BYTES);
  return data && textView(data, digest.sizeBytes, digest);
}

async function outputText(
  context: RequestContext,
  cas: BlobStore,
  raw: Buffer,
  digest: DigestView | undefined,
): Promise<TextView> {
  if (raw.length > 0 || !digest) return textView(raw, raw.length);
  const data = await readPrefix(context, cas, digest, MAXIMUM_SHOWN_BYTES);
  if (!data) return { digest, sizeBytes: digest.sizeBytes, text: '', truncated: false, binary: false, missing: true };
  return textView(data, digest.sizeBytes, digest);
}

/** One entry of a directory listing. */
export type DirectoryEntryView =
  | { kind: 'file'; name: string; digest: DigestView; executable: boolean }
  | { kind: 'directory'; name: string; digest: DigestView }
  | { kind: 'symlink'; name: string; target: string };

function directoryEntries(directory: Directory): DirectoryEntryView[] {
  return [
    ...directory.directories.map(
      (d): DirectoryEntryView => ({ kind: 'directory', name: d.name, digest: digestView(d.digest) as DigestView }),
    ),
    ...directory.files.map(
      (f): DirectoryEntryView => ({
        kind: 'file',
        name: f.name,
        digest: digestView(f.digest) as DigestView,
        executable: f.isExecutable,
      }),
    ),
    ...directory.symlinks.map((s): DirectoryEntryView => ({ kind: 'symlink', name: s.name, target: s.target })),
  ];
}

/** A Directory by digest; undefined when it is not in the CAS; INVALID_ARGUMENT when it is not a Directory. */
export async function directoryListing(
  context: RequestContext,
  cas: BlobStore,
  digest: Digest,
): Promise<DirectoryEntryView[] | undefined> {
  const data = await readPrefix(context, cas, digest, digest.sizeBytes);
  return data && directoryEntries(decodeDirectory(data, digest));
}

/**
 * An output directory (a Tree message) flattened to its entries by path; subdirectories
 * are found among the Tree's children by digest.
 */
export async function treeListing(
  context: RequestContext,
  cas: BlobStore,
  digest: Digest,
): Promise<{ path: string; entry: DirectoryEntryView }[] | undefined> {
  const data = await readPrefix(context, cas, digest, digest.sizeBytes);
  if (!data) return undefined;
  const tree = Tree.decode(data);
  const fn = digestFunctionOf(digest);
  const children = new Map(
    tree.children.map((child) => [formatDigest(digestOf(Directory.encode(child).finish(), fn)), child]),
  );
  const listed: { path: string; entry: DirectoryEntryView }[] = [];
  const visit = (directory: Directory, prefix: string, depth: number) => {
    for (const entry of directoryEntries(directory)) {
      const path = `${prefix}${entry.name}`;
      listed.push({ path, entry });
      if (entry.kind !== 'directory' || depth > 64 || listed.length > 10_000) continue;
      const child = children.get(formatDigest(entry.digest));
      if (child) visit(child, `${path}/`, depth + 1);
    }
  };
  if (tree.root) visit(tree.root, '', 0);
  return listed;
}

/** The latest result of an action, as its page shows it. */
export interface ResultView {
  readonly exitCode: number;
  readonly cacheHit: boolean;
  readonly worker?: string;
  /** Phase durations in milliseconds (queued by the server's clock, the others as the worker timed them). */
  readonly phasesMs: Record<string, number>;
  readonly outputFiles: { path: string; digest?: DigestView; executable: boolean }[];
  readonly outputDirectories: { path: string; treeDigest?: DigestView }[];
  readonly outputSymlinks: { path: string; target: string }[];
  readonly stdout: TextView;
  readonly stderr: TextView;
  /** The error the operation ended with, when it did not run to an exit code. */
  readonly error?: string;
}

export interface ActionView {
  readonly digest: DigestView;
  /** Undefined when the Action is not in the CAS (evicted, or never uploaded). */
  readonly action?: {
    readonly commandDigest?: DigestView;
    readonly inputRootDigest?: DigestView;
    readonly timeoutMs?: number;
    readonly doNotCache: boolean;
    readonly platform: { name: string; value: string }[];
  };
  readonly command?: {
    readonly arguments: string[];
    readonly environment: { name: string; value: string }[];
    readonly workingDirectory: string;
    readonly outputPaths: string[];
    readonly platform: { name: string; value: string }[];
  };
  /** Every operation the scheduler still knows for it, newest first. */
  readonly operations: OperationSummary[];
  readonly result?: ResultView;
}

async function resultView(
  context: RequestContext,
  cas: BlobStore,
  operation: OperationRecord,
): Promise<ResultView | undefined> {
  const response = operation.response;
  if (!response) return undefined;
  const result: ActionResult | undefined = response.result;
  const code = response.status?.code ?? 0;
  const phasesMs: Record<string, number> = {};
  if (!response.cachedResult) {
    if (operation.startedAtMs !== undefined) phasesMs.queued = operation.startedAtMs - operation.queuedAtMs;
    Object.assign(phasesMs, workerPhasesMs(result?.executionMetadata));
  }
  return {
    exitCode: result?.exitCode ?? 0,
    cacheHit: response.cachedResult,
    worker: result?.executionMetadata?.worker || operation.workerId,
    phasesMs,
    outputFiles: (result?.outputFiles ?? []).map((f) => ({
      path: f.path,
      digest: digestView(f.digest),
      executable: f.isExecutable,
    })),
    outputDirectories: (result?.outputDirectories ?? []).map((d) => ({
      path: d.path,
      treeDigest: digestView(d.treeDigest),
    })),
    outputSymlinks: [...(result?.outputFileSymlinks ?? []), ...(result?.outputDirectorySymlinks ?? [])].map((s) => ({
      path: s.path,
      target: s.target,
    })),
    stdout: await outputText(context, cas, result?.stdoutRaw ?? Buffer.alloc(0), digestView(result?.stdoutDigest)),
    stderr: await outputText(context, cas, result?.stderrRaw ?? Buffer.alloc(0), digestView(result?.stderrDigest)),
    error: code !== 0 ? response.status?.message || `status ${code}` : undefined,
  };
}

/** An action's page: what it is (from the CAS) and what became of it (from the scheduler). */
export async function actionView(
  context: RequestContext,
  admin: SchedulerAdmin,
  cas: BlobStore,
  digest: Digest,
  visible: (operation: OperationRecord) => boolean = () => true,
): Promise<ActionView> {
  const actionData = await readPrefix(context, cas, digest, digest.sizeBytes);
  const action = actionData ? Action.decode(actionData) : undefined;
  const commandDigest = action?.commandDigest && action.commandDigest.hash !== '' ? action.commandDigest : undefined;
  const commandData = commandDigest
    ? await readPrefix(context, cas, parseDigest(commandDigest, undefined, 'command_digest'), commandDigest.sizeBytes)
    : undefined;
  const command = commandData ? Command.decode(commandData) : undefined;
  const { operations } = await findOperations(context, admin, { action: digest, limit: 50 }, visible);
  const record = operations.find((o) => o.stage === 'COMPLETED');
  const timeout = action?.timeout;
  return {
    digest: { hash: digest.hash, sizeBytes: digest.sizeBytes },
    action: action && {
      commandDigest: digestView(action.commandDigest),
      inputRootDigest: digestView(action.inputRootDigest),
      timeoutMs: timeout ? timeout.seconds * 1000 + Math.floor(timeout.nanos / 1e6) : undefined,
      doNotCache: action.doNotCache,
      platform: platformView(action.platform),
    },
    command: command && {
      arguments: command.arguments,
      environment: command.environmentVariables.map((v) => ({ name: v.name, value: v.value })),
      workingDirectory: command.workingDirectory,
      outputPaths:
        command.outputPaths.length > 0 ? command.outputPaths : [...command.outputFiles, ...command.outputDirectories],
      platform: platformView(command.platform),
    },
    operations: operations.map(summarizeOperation),
    result: record ? await resultView(context, cas, record) : undefined,
  };
}

export interface WorkerSummary {
  readonly id: string;
  readonly botId?: string;
  readonly properties: { name: string; value: string }[];
  readonly slots?: number;
  readonly lastSeenMs: number;
  readonly draining: boolean;
  readonly goneAtMs?: number;
  readonly leases: OperationSummary[];
}

export async function listWorkers(admin: SchedulerAdmin, context = backgroundContext()): Promise<WorkerSummary[]> {
  const workers: WorkerView[] = await admin.workers(context);
  return workers.map((w) => ({
    id: w.id,
    botId: w.botId,
    properties: w.properties,
    slots: w.slots,
    lastSeenMs: w.lastSeenMs,
    draining: w.draining,
    goneAtMs: w.goneAtMs,
    leases: w.leases.map(summarizeOperation),
  }));
}
