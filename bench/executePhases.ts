/**
 * Where an executed action's time goes, from the farm's own account of it: the
 * ExecutedActionMetadata timestamps every REAPI worker fills in (Granary's and
 * Buildbarn's alike), next to the latency the client saw. Runs N distinct
 * trivial actions (the side-by-side bench's shape: `sh -c` copying one small
 * input into one output) against any REAPI server with execution, C at a time,
 * and prints the median of each phase:
 *
 *   queued -> worker start       lease delivery (scheduler, Bots API, the worker taking it)
 *   worker start -> input fetch  reading the Action/Command, setting up
 *   input fetch                  staging the input root
 *   fetched -> execution start   sandbox and process start, up to the exec
 *   execution                    the command itself (as the worker measured it)
 *   execution end -> upload start collecting outputs
 *   upload                       hashing and uploading outputs
 *   upload end -> worker completed  cleaning up
 *   worker completed -> client   reporting, the action-cache write, waking the Execute stream
 *
 * Usage: node dist-test/bench/executePhases.js grpc://HOST:PORT [--actions N] [--concurrency C]
 * Phases are wall-clock times on two machines' clocks only when the worker is
 * elsewhere; on loopback they share one clock.
 */
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { connect } from '../src/client/connection.js';
import { executeRemotely } from '../src/client/execute.js';
import { GrpcBlobStore } from '../src/client/grpcBlobStore.js';
import { backgroundContext } from '../src/context/requestContext.js';
import { type Digest, digestOf } from '../src/digest/digest.js';
import {
  Action,
  Command,
  Directory,
  type ExecutedActionMetadata,
} from '../src/gen/build/bazel/remote/execution/v2/remote_execution.js';
import type { Timestamp } from '../src/gen/google/protobuf/timestamp.js';
import { putBuffer } from '../src/storage/blobStore.js';
import { mapLimited } from '../src/util/concurrency.js';

/** One action's phases in milliseconds, in the order of the header above. */
export interface ActionPhases {
  clientMs: number;
  phases: Record<PhaseName, number>;
}

export const PHASE_NAMES = [
  'submit -> queued',
  'queued -> worker start',
  'worker start -> input fetch',
  'input fetch',
  'fetched -> execution start',
  'execution',
  'execution end -> upload start',
  'upload',
  'upload end -> worker completed',
  'worker completed -> client',
] as const;
export type PhaseName = (typeof PHASE_NAMES)[number];

function ms(timestamp: Timestamp | undefined): number {
  if (!timestamp) return Number.NaN;
  return Number(timestamp.seconds) * 1000 + timestamp.nanos / 1e6;
}

/** The phases of one action from its metadata and the client's start and end times (epoch ms). */
export function phasesOf(metadata: ExecutedActionMetadata, clientStartMs: number, clientEndMs: number): ActionPhases {
  const queued = ms(metadata.queuedTimestamp);
  const workerStart = ms(metadata.workerStartTimestamp);
  const fetchStart = ms(metadata.inputFetchStartTimestamp);
  const fetchEnd = ms(metadata.inputFetchCompletedTimestamp);
  const execStart = ms(metadata.executionStartTimestamp);
  const execEnd = ms(metadata.executionCompletedTimestamp);
  const uploadStart = ms(metadata.outputUploadStartTimestamp);
  const uploadEnd = ms(metadata.outputUploadCompletedTimestamp);
  const workerEnd = ms(metadata.workerCompletedTimestamp);
  return {
    clientMs: clientEndMs - clientStartMs,
    phases: {
      'submit -> queued': queued - clientStartMs,
      'queued -> worker start': workerStart - queued,
      'worker start -> input fetch': fetchStart - workerStart,
      'input fetch': fetchEnd - fetchStart,
      'fetched -> execution start': execStart - fetchEnd,
      execution: execEnd - execStart,
      'execution end -> upload start': uploadStart - execEnd,
      upload: uploadEnd - uploadStart,
      'upload end -> worker completed': workerEnd - uploadEnd,
      'worker completed -> client': clientEndMs - workerEnd,
    },
  };
}

export function median(values: readonly number[]): number {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

export function mean(values: readonly number[]): number {
  const finite = values.filter((v) => Number.isFinite(v));
  return finite.length === 0 ? Number.NaN : finite.reduce((sum, v) => sum + v, 0) / finite.length;
}

/** What one measurement found: throughput, client latency and each phase's median and mean. */
export interface PhaseSummary {
  target: string;
  actions: number;
  concurrency: number;
  actionsPerSecond: number;
  clientP50Ms: number;
  clientMeanMs: number;
  phaseMediansMs: Record<string, number>;
  phaseMeansMs: Record<string, number>;
}

/** Uploads `count` fresh trivial actions to `target`, then executes them `concurrency` at a time. */
export async function measurePhases(target: string, count: number, concurrency: number): Promise<PhaseSummary> {
  const url = new URL(target);
  const instanceName = url.pathname.replace(/^\//, '');
  const connection = connect(`grpc://${url.host}`, instanceName);
  const cas = new GrpcBlobStore(connection);
  try {
    const upload = async (data: Buffer): Promise<Digest> => {
      const digest = digestOf(data);
      await putBuffer(backgroundContext(), cas, digest, data);
      return digest;
    };
    const command = await upload(
      Buffer.from(
        Command.encode(
          Command.fromPartial({
            arguments: ['/bin/sh', '-c', 'cat in.txt in.txt > out.txt'],
            environmentVariables: [{ name: 'PATH', value: '/bin:/usr/bin' }],
            outputFiles: ['out.txt'],
            outputPaths: ['out.txt'],
          }),
        ).finish(),
      ),
    );
    const nonce = randomUUID();
    const actions = await mapLimited([...Array(count).keys()], 8, async (index) => {
      const input = await upload(Buffer.from(`granary phases ${nonce} action ${index}\n`));
      const root = await upload(
        Buffer.from(Directory.encode(Directory.fromPartial({ files: [{ name: 'in.txt', digest: input }] })).finish()),
      );
      return upload(
        Buffer.from(Action.encode(Action.fromPartial({ commandDigest: command, inputRootDigest: root })).finish()),
      );
    });
    const startMs = Date.now();
    const measured = await mapLimited(actions, concurrency, async (action) => {
      const clientStartMs = Date.now();
      const response = await executeRemotely(connection, action);
      const clientEndMs = Date.now();
      const metadata = response.result?.executionMetadata;
      if (!metadata || response.result?.exitCode !== 0) {
        throw new Error(`action failed: ${JSON.stringify(response.status)}`);
      }
      return phasesOf(metadata, clientStartMs, clientEndMs);
    });
    const elapsedMs = Date.now() - startMs;
    return {
      target,
      actions: count,
      concurrency,
      actionsPerSecond: count / (elapsedMs / 1000),
      clientP50Ms: median(measured.map((m) => m.clientMs)),
      clientMeanMs: mean(measured.map((m) => m.clientMs)),
      phaseMediansMs: Object.fromEntries(
        PHASE_NAMES.map((name) => [name, median(measured.map((m) => m.phases[name]))]),
      ),
      phaseMeansMs: Object.fromEntries(PHASE_NAMES.map((name) => [name, mean(measured.map((m) => m.phases[name]))])),
    };
  } finally {
    connection.close();
  }
}

async function main(): Promise<void> {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: {
      actions: { type: 'string', default: '60' },
      concurrency: { type: 'string', default: '1' },
      json: { type: 'boolean', default: false },
    },
  });
  const target = positionals[0];
  if (!target) throw new Error('usage: executePhases.js grpc://HOST:PORT[/INSTANCE] [--actions N] [--concurrency C]');
  const count = Number(values.actions);
  const summary = await measurePhases(target, count, Number(values.concurrency));
  const { concurrency } = summary;
  if (values.json) {
    console.log(JSON.stringify(summary));
    return;
  }
  console.log(
    `${target}: ${count} actions, ${concurrency} at a time: ${summary.actionsPerSecond.toFixed(1)} actions/s`,
  );
  console.log(`  ${'phase'.padEnd(32)} median    mean (ms)`);
  console.log(
    `  ${'client latency'.padEnd(32)} ${summary.clientP50Ms.toFixed(1).padStart(6)}  ${summary.clientMeanMs.toFixed(1).padStart(6)}`,
  );
  for (const name of PHASE_NAMES) {
    const medianMs = (summary.phaseMediansMs[name] as number).toFixed(1).padStart(6);
    console.log(`  ${name.padEnd(32)} ${medianMs}  ${(summary.phaseMeansMs[name] as number).toFixed(1).padStart(6)}`);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
