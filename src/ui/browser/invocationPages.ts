/// <reference lib="dom" />
/**
 * The pages of Bazel invocations heard of through the Build Event Service: the
 * list, and one invocation with its command, target patterns, command line,
 * targets, test results and the actions it ran on the farm (each linked to its
 * page).
 */
import { getJson } from './api.js';
import { facts, formatDuration, formatTime, h, link, shellQuote, show, status, table } from './dom.js';
import { type Operation, operationTable } from './operationPages.js';

interface InvocationSummary {
  id: string;
  command?: string;
  patterns: string[];
  startedAtMs?: number;
  finishedAtMs?: number;
  exitCode?: { name: string; code: number };
  lastEventAtMs: number;
  targets: number;
  tests: number;
  testsPassed: number;
}

interface Invocation extends InvocationSummary {
  buildId: string;
  toolVersion?: string;
  workspaceDirectory?: string;
  commandLine: string[];
  aborted?: string;
  truncated: boolean;
  targetList: { label: string; kind?: string; success?: boolean }[];
  testList: {
    label: string;
    status: string;
    attempts: number;
    cachedAttempts: number;
    durationMs: number;
    hostname?: string;
  }[];
  actions: Operation[];
}

function outcome(invocation: InvocationSummary): HTMLElement {
  if (!invocation.exitCode) return status('running');
  return status(invocation.exitCode.code === 0 ? 'SUCCESS' : invocation.exitCode.name || 'FAILED');
}

export async function invocationsPage(): Promise<void> {
  const { invocations } = await getJson<{ invocations: InvocationSummary[] }>('/api/invocations');
  show(
    h('h1', {}, 'Invocations'),
    h(
      'p',
      { class: 'muted' },
      'Bazel builds that sent their events here (--bes_backend=grpc://this farm); the most recent are kept in memory.',
    ),
    invocations.length === 0
      ? h('p', { class: 'muted' }, 'No invocation yet.')
      : table(
          ['started', 'invocation', 'command', 'targets', 'tests passed', 'result', 'duration'],
          invocations.map((i) => [
            formatTime(i.startedAtMs ?? i.lastEventAtMs),
            link(`/invocations/${encodeURIComponent(i.id)}`, i.id),
            `${i.command ?? ''} ${i.patterns.join(' ')}`,
            i.targets,
            i.tests > 0 ? `${i.testsPassed} / ${i.tests}` : '',
            outcome(i),
            formatDuration(
              i.finishedAtMs !== undefined && i.startedAtMs !== undefined ? i.finishedAtMs - i.startedAtMs : undefined,
            ),
          ]),
          [3],
        ),
  );
}

export async function invocationPage(id: string): Promise<void> {
  const invocation = await getJson<Invocation>(`/api/invocation/${encodeURIComponent(id)}`);
  show(
    h('h1', {}, `bazel ${invocation.command ?? ''} ${invocation.patterns.join(' ')}`),
    facts([
      ['invocation id', invocation.id],
      ['result', outcome(invocation)],
      ['exit code', invocation.exitCode ? `${invocation.exitCode.code} (${invocation.exitCode.name})` : undefined],
      ['aborted', invocation.aborted],
      ['started', formatTime(invocation.startedAtMs)],
      [
        'duration',
        invocation.finishedAtMs !== undefined && invocation.startedAtMs !== undefined
          ? formatDuration(invocation.finishedAtMs - invocation.startedAtMs)
          : undefined,
      ],
      ['Bazel', invocation.toolVersion],
      ['workspace', invocation.workspaceDirectory],
      [
        'actions on this farm',
        link(`/operations?invocation=${encodeURIComponent(invocation.id)}`, String(invocation.actions.length)),
      ],
    ]),
    invocation.truncated ? h('p', { class: 'muted' }, 'Very large invocation: only the first entries are kept.') : '',
    h('h2', {}, 'Command line'),
    h('pre', {}, shellQuote(invocation.commandLine)),
    h('h2', {}, `Tests (${invocation.testList.length})`),
    invocation.testList.length === 0
      ? h('p', { class: 'muted' }, '(none)')
      : table(
          ['test', 'status', 'attempts', 'cached', 'duration', 'ran on'],
          invocation.testList.map((t) => [
            t.label,
            status(t.status),
            t.attempts,
            t.cachedAttempts,
            formatDuration(t.durationMs),
            t.hostname ?? '',
          ]),
          [2, 3, 4],
        ),
    h('h2', {}, `Targets (${invocation.targetList.length})`),
    invocation.targetList.length === 0
      ? h('p', { class: 'muted' }, '(none)')
      : table(
          ['target', 'kind', 'built'],
          invocation.targetList.map((t) => [
            t.label,
            t.kind ?? '',
            t.success === undefined ? '' : status(t.success ? 'ok' : 'bad'),
          ]),
        ),
    h('h2', {}, `Actions run on the farm (${invocation.actions.length})`),
    operationTable(invocation.actions),
  );
}
