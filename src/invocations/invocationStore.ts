/**
 * The Bazel invocations the farm has heard of through the Build Event Service:
 * what was run (command, target patterns, command line), which targets were
 * built, how each test ended, and how the invocation finished. Kept in memory
 * and bounded (the oldest invocations, and entries past a per-invocation limit,
 * are dropped), because it is an operator's recent view, not a record of
 * history; the actions an invocation ran are found in the scheduler by its id.
 */

/** A test target's outcome in one invocation. */
export interface TestOutcome {
  readonly label: string;
  /** PASSED, FAILED, FLAKY, TIMEOUT, ... (Bazel's TestStatus names). */
  status: string;
  /** Attempts reported so far (one per run, shard and attempt). */
  attempts: number;
  /** Attempts that were cached (locally by Bazel or remotely). */
  cachedAttempts: number;
  /** Total duration of the attempts, in milliseconds. */
  durationMs: number;
  /** Where the last attempt ran, when Bazel said (a remote worker's host name). */
  hostname?: string;
  /** Bazel's summary has arrived: the status is final. */
  summarized: boolean;
}

/** A target in one invocation. */
export interface TargetOutcome {
  readonly label: string;
  /** The rule kind (e.g. `cc_binary rule`), when configured. */
  kind?: string;
  /** Undefined until the target completed. */
  success?: boolean;
}

export interface Invocation {
  readonly id: string;
  buildId: string;
  /** `build`, `test`, `run`, ... */
  command?: string;
  toolVersion?: string;
  workspaceDirectory?: string;
  /** The target patterns asked for. */
  patterns: string[];
  /** The command line as Bazel's server received it. */
  commandLine: string[];
  startedAtMs?: number;
  finishedAtMs?: number;
  /** The build's exit code and its name (`SUCCESS`, `BUILD_FAILURE`, ...), once finished. */
  exitCode?: { name: string; code: number };
  /** Whether Bazel said the build was aborted, and why. */
  aborted?: string;
  lastEventAtMs: number;
  eventCount: number;
  readonly targets: Map<string, TargetOutcome>;
  readonly tests: Map<string, TestOutcome>;
  /** Entries were dropped past the per-invocation limits. */
  truncated: boolean;
}

export interface InvocationStoreOptions {
  /** Invocations kept; the least recently active is dropped beyond it. */
  maximumInvocations?: number;
  /** Targets and tests kept per invocation. */
  maximumEntriesPerInvocation?: number;
  /** Command-line arguments kept per invocation. */
  maximumArguments?: number;
  now?: () => number;
}

/** Bounded, in-memory invocations by id; the Build Event Service writes, the web UI reads. */
export class InvocationStore {
  private readonly invocations = new Map<string, Invocation>();
  private readonly maximumInvocations: number;
  readonly maximumEntriesPerInvocation: number;
  readonly maximumArguments: number;
  private readonly now: () => number;

  constructor(options: InvocationStoreOptions = {}) {
    this.maximumInvocations = options.maximumInvocations ?? 200;
    this.maximumEntriesPerInvocation = options.maximumEntriesPerInvocation ?? 5000;
    this.maximumArguments = options.maximumArguments ?? 1000;
    this.now = options.now ?? Date.now;
  }

  /** The invocation, created on first mention; marks it as the most recently active. */
  touch(id: string, buildId: string): Invocation {
    let invocation = this.invocations.get(id);
    if (invocation) {
      this.invocations.delete(id);
    } else {
      invocation = {
        id,
        buildId,
        patterns: [],
        commandLine: [],
        lastEventAtMs: this.now(),
        eventCount: 0,
        targets: new Map(),
        tests: new Map(),
        truncated: false,
      };
    }
    invocation.lastEventAtMs = this.now();
    invocation.eventCount++;
    this.invocations.set(id, invocation);
    while (this.invocations.size > this.maximumInvocations) {
      const oldest = this.invocations.keys().next().value as string;
      this.invocations.delete(oldest);
    }
    return invocation;
  }

  /** The target's entry, unless the invocation is full. */
  target(invocation: Invocation, label: string): TargetOutcome | undefined {
    return entryOf(invocation, invocation.targets, label, this.maximumEntriesPerInvocation, () => ({ label }));
  }

  /** The test's entry, unless the invocation is full. */
  test(invocation: Invocation, label: string): TestOutcome | undefined {
    return entryOf(invocation, invocation.tests, label, this.maximumEntriesPerInvocation, () => ({
      label,
      status: 'NO_STATUS',
      attempts: 0,
      cachedAttempts: 0,
      durationMs: 0,
      summarized: false,
    }));
  }

  get(id: string): Invocation | undefined {
    return this.invocations.get(id);
  }

  /** Every kept invocation, most recently active first. */
  list(): Invocation[] {
    return [...this.invocations.values()].reverse();
  }
}

function entryOf<T>(
  invocation: Invocation,
  entries: Map<string, T>,
  label: string,
  maximum: number,
  create: () => T,
): T | undefined {
  const existing = entries.get(label);
  if (existing) return existing;
  if (entries.size >= maximum) {
    invocation.truncated = true;
    return undefined;
  }
  const created = create();
  entries.set(label, created);
  return created;
}
