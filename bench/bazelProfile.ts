/**
 * Where a Bazel build's time went, from its JSON profile (`--profile=FILE`, Chrome
 * trace format, as Bazel 4.2.3 writes it), and where a granary serve's action time
 * went, from its /metrics.
 *
 * Bazel records, on the thread that runs an action, one event per remote phase of a
 * spawn: `check cache hit` (GetActionResult), `upload missing inputs`
 * (FindMissingBlobs and the uploads), `execute remotely` (Execute until its result),
 * `download outputs` (and `download server logs`), and `MerkleTree.build(ActionInput)`
 * (the input tree, computed by Bazel before the cache check). The critical path is a
 * thread of its own ("Critical Path") whose events, `action 'DESCRIPTION'`, are the
 * actions on it; the same action's `action processing` event (named DESCRIPTION) on
 * the thread that ran it gives the window in which to find its remote phases.
 *
 * `node dist-test/bench/bazelProfile.js FILE.json...` prints the summary of each file.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

export interface BazelTraceEvent {
  cat?: string;
  name?: string;
  ph?: string;
  /** Microseconds since the profile began. */
  ts?: number;
  /** Microseconds. */
  dur?: number;
  tid?: number;
  args?: Record<string, unknown>;
}

export interface BazelProfile {
  traceEvents: BazelTraceEvent[];
}

/** The phases of a spawn Bazel records, in the order they happen, as this summary names them. */
export const SPAWN_PHASES = [
  'merkle tree',
  'cache check',
  'upload inputs',
  'execute remotely',
  'download outputs',
] as const;
export type SpawnPhase = (typeof SPAWN_PHASES)[number];

/** Which event is which phase. */
function phaseOf(event: BazelTraceEvent): SpawnPhase | undefined {
  switch (event.cat) {
    case 'remote action cache check':
      return 'cache check';
    case 'Remote execution upload time':
      return 'upload inputs';
    case 'remote action execution':
      return 'execute remotely';
    case 'remote output download':
      // Also 'download server logs', which Granary never sends.
      return event.name === 'download outputs' ? 'download outputs' : undefined;
    case 'general information':
      return event.name?.startsWith('MerkleTree.build') ? 'merkle tree' : undefined;
    default:
      return undefined;
  }
}

export interface PhaseTotals {
  /** Events of this phase. */
  count: number;
  /** Their summed duration, seconds. */
  seconds: number;
}

export interface BazelProfileSummary {
  /** From the first to the last event, seconds. */
  wallSeconds: number;
  /** The execution phase (Bazel's "Build artifacts" to "Complete build" markers), seconds, when marked. */
  executionSeconds?: number;
  /** Actions that ran (`action processing` events), and their summed duration. */
  actions: PhaseTotals;
  /** Per spawn phase, over the whole build. */
  phases: Record<SpawnPhase, PhaseTotals>;
  /** The critical path: its actions and their summed duration. */
  criticalPath: PhaseTotals;
  /** Per spawn phase, over the actions on the critical path. */
  criticalPathPhases: Record<SpawnPhase, PhaseTotals>;
  /** The longest actions on the critical path: description and seconds, longest first. */
  criticalPathActions: { name: string; seconds: number }[];
}

const end = (event: BazelTraceEvent) => (event.ts ?? 0) + (event.dur ?? 0);

function emptyPhases(): Record<SpawnPhase, PhaseTotals> {
  return Object.fromEntries(SPAWN_PHASES.map((phase) => [phase, { count: 0, seconds: 0 }])) as Record<
    SpawnPhase,
    PhaseTotals
  >;
}

function add(totals: PhaseTotals, event: BazelTraceEvent): void {
  totals.count += 1;
  totals.seconds += (event.dur ?? 0) / 1e6;
}

export function summariseBazelProfile(profile: BazelProfile, longest = 5): BazelProfileSummary {
  const events = profile.traceEvents.filter((e) => typeof e.ts === 'number');
  const start = Math.min(...events.map((e) => e.ts as number));
  const last = Math.max(...events.map(end));
  const criticalThreads = new Set(
    profile.traceEvents
      .filter((e) => e.ph === 'M' && e.name === 'thread_name' && e.args?.name === 'Critical Path')
      .map((e) => e.tid),
  );
  const marker = (name: string) => events.find((e) => e.cat === 'build phase marker' && e.name === name)?.ts;
  const buildStart = marker('Build artifacts');
  const buildEnd = marker('Complete build');
  const phases = emptyPhases();
  const criticalPathPhases = emptyPhases();
  const actions: PhaseTotals = { count: 0, seconds: 0 };
  const criticalPath: PhaseTotals = { count: 0, seconds: 0 };
  const processing: BazelTraceEvent[] = [];
  const spawnEvents: { event: BazelTraceEvent; phase: SpawnPhase }[] = [];
  for (const event of events) {
    if (event.cat === 'action processing') {
      add(actions, event);
      processing.push(event);
      continue;
    }
    const phase = phaseOf(event);
    if (phase) {
      add(phases[phase], event);
      spawnEvents.push({ event, phase });
    }
  }
  const onPath = events.filter((e) => e.cat === 'critical path component' && criticalThreads.has(e.tid));
  const criticalPathActions: { name: string; seconds: number }[] = [];
  for (const component of onPath) {
    add(criticalPath, component);
    const match = /^action '(.*)'$/s.exec(component.name ?? '');
    if (!match) continue;
    criticalPathActions.push({ name: match[1] as string, seconds: (component.dur ?? 0) / 1e6 });
    // The action's own event: same description, on a worker thread, overlapping the component.
    const own = processing.find(
      (p) => p.name === match[1] && (p.ts ?? 0) < end(component) && end(p) > (component.ts ?? 0),
    );
    if (!own) continue;
    for (const { event, phase } of spawnEvents) {
      if (event.tid === own.tid && (event.ts ?? 0) >= (own.ts ?? 0) && end(event) <= end(own)) {
        add(criticalPathPhases[phase], event);
      }
    }
  }
  criticalPathActions.sort((a, b) => b.seconds - a.seconds);
  return {
    wallSeconds: (last - start) / 1e6,
    ...(buildStart !== undefined && buildEnd !== undefined ? { executionSeconds: (buildEnd - buildStart) / 1e6 } : {}),
    actions,
    phases,
    criticalPath,
    criticalPathPhases,
    criticalPathActions: criticalPathActions.slice(0, longest),
  };
}

/** The summary as a few lines of text. */
export function formatBazelProfileSummary(summary: BazelProfileSummary): string[] {
  const seconds = (value: number) => `${value.toFixed(1)} s`;
  const lines = [
    `profile: ${seconds(summary.wallSeconds)} in all` +
      (summary.executionSeconds === undefined ? '' : `, execution phase ${seconds(summary.executionSeconds)}`) +
      `; ${summary.actions.count} actions, ${seconds(summary.actions.seconds)} summed; ` +
      `critical path ${seconds(summary.criticalPath.seconds)} (${summary.criticalPath.count} components)`,
  ];
  const spawns = summary.phases['execute remotely'].count;
  if (spawns > 0) {
    lines.push(`remote spawn phases (whole build, ${spawns} executed remotely | on the critical path):`);
    for (const phase of SPAWN_PHASES) {
      const all = summary.phases[phase];
      const critical = summary.criticalPathPhases[phase];
      if (all.count === 0) continue;
      const mean = (all.seconds / all.count) * 1000;
      lines.push(
        `  ${phase.padEnd(17)} ${String(all.count).padStart(4)} x, ${seconds(all.seconds).padStart(8)}, ` +
          `mean ${mean.toFixed(0).padStart(5)} ms | ${String(critical.count).padStart(3)} x, ${seconds(critical.seconds)}`,
      );
    }
  }
  lines.push(
    `longest on the critical path: ${summary.criticalPathActions.map((a) => `${a.name} ${seconds(a.seconds)}`).join('; ')}`,
  );
  return lines;
}

/**
 * From a granary serve's /metrics text: per action phase (queued, input_fetch,
 * execution, output_upload) the actions and seconds, and per gRPC method of the
 * client's services the calls and the summed handling time.
 */
export function summariseServerMetrics(text: string): string[] {
  const lines: string[] = [];
  const phases = new Map<string, { count: number; sum: number }>();
  const methods = new Map<string, { count: number; sum: number }>();
  for (const line of text.split('\n')) {
    const phase = /^granary_action_phase_seconds_(sum|count)\{phase="([a-z_]+)"\} (\S+)$/.exec(line);
    if (phase) {
      const entry = phases.get(phase[2] as string) ?? { count: 0, sum: 0 };
      entry[phase[1] === 'sum' ? 'sum' : 'count'] += Number(phase[3]);
      phases.set(phase[2] as string, entry);
      continue;
    }
    const call =
      /^granary_grpc_server_handling_seconds_(sum|count)\{service="([^"]+)",method="([^"]+)",code="([^"]+)"\} (\S+)$/.exec(
        line,
      );
    // The workers' own calls (Bots) are long polls: their handling time is waiting.
    if (call && !(call[2] as string).includes('remoteworkers')) {
      const key = `${(call[2] as string).split('.').at(-1)}.${call[3]}`;
      const entry = methods.get(key) ?? { count: 0, sum: 0 };
      entry[call[1] === 'sum' ? 'sum' : 'count'] += Number(call[5]);
      methods.set(key, entry);
    }
  }
  if (phases.size > 0) {
    lines.push(
      `action phases: ${[...phases]
        .map(
          ([name, { count, sum }]) =>
            `${name} ${sum.toFixed(1)} s (${count} x, mean ${((sum / Math.max(1, count)) * 1000).toFixed(0)} ms)`,
        )
        .join('; ')}`,
    );
  }
  if (methods.size > 0) {
    lines.push(
      `calls: ${[...methods]
        .sort((a, b) => b[1].sum - a[1].sum)
        .map(([name, { count, sum }]) => `${name} ${count} x ${sum.toFixed(1)} s`)
        .join('; ')}`,
    );
  }
  return lines;
}

/** One operation as granary's /api/operations lists it (the fields used here). */
export interface ListedOperation {
  mnemonic?: string;
  queuedAtMs?: number;
  startedAtMs?: number;
  completedAtMs?: number;
}

/**
 * Per mnemonic, from granary's /api/operations: how many actions, how long each waited
 * in the queue (queued to started on a worker) and held a slot (started to completed), mean.
 */
export function summariseOperations(operations: readonly ListedOperation[]): string {
  const byMnemonic = new Map<string, { count: number; waitMs: number; slotMs: number }>();
  for (const operation of operations) {
    const { queuedAtMs, startedAtMs, completedAtMs } = operation;
    if (queuedAtMs === undefined || startedAtMs === undefined || completedAtMs === undefined) continue;
    const key = operation.mnemonic ?? '?';
    const entry = byMnemonic.get(key) ?? { count: 0, waitMs: 0, slotMs: 0 };
    entry.count += 1;
    entry.waitMs += startedAtMs - queuedAtMs;
    entry.slotMs += completedAtMs - startedAtMs;
    byMnemonic.set(key, entry);
  }
  const all = [...byMnemonic.values()].reduce(
    (sum, e) => ({ count: sum.count + e.count, waitMs: sum.waitMs + e.waitMs, slotMs: sum.slotMs + e.slotMs }),
    { count: 0, waitMs: 0, slotMs: 0 },
  );
  const describe = (name: string, e: { count: number; waitMs: number; slotMs: number }) =>
    `${name} ${e.count} x, queued ${(e.waitMs / e.count).toFixed(0)} ms, on a slot ${(e.slotMs / e.count).toFixed(0)} ms`;
  return `operations (means): ${[
    describe('all', all),
    ...[...byMnemonic].sort((a, b) => b[1].count - a[1].count).map(([name, e]) => describe(name, e)),
  ].join('; ')}`;
}

async function main(files: string[]): Promise<number> {
  if (files.length === 0) {
    console.error('usage: node dist-test/bench/bazelProfile.js PROFILE.json...');
    return 2;
  }
  for (const file of files) {
    console.log(file);
    const summary = summariseBazelProfile(JSON.parse(await readFile(file, 'utf8')) as BazelProfile);
    for (const line of formatBazelProfileSummary(summary)) console.log(`  ${line}`);
  }
  return 0;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) process.exitCode = await main(process.argv.slice(2));
