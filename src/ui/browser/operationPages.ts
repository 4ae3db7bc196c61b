/// <reference lib="dom" />
/**
 * The pages about work: the overview (cards, queues, the latest operations), the
 * operation list with its filters (status, invocation, tool, worker), and an
 * action's page (what it ran, with what inputs, where, how long each phase took,
 * what it printed and produced).
 */
import { getJson } from './api.js';
import {
  type Child,
  card,
  type Digest,
  digestPath,
  facts,
  formatBytes,
  formatDuration,
  formatTime,
  h,
  link,
  shellQuote,
  shortDigest,
  show,
  status,
  table,
} from './dom.js';

/** An operation as /api/operations returns it. */
export interface Operation {
  name: string;
  action: string;
  instanceName: string;
  stage: string;
  status: string;
  queuedAtMs: number;
  startedAtMs?: number;
  completedAtMs?: number;
  worker?: string;
  attempts: number;
  tool?: string;
  toolVersion?: string;
  invocation?: string;
  mnemonic?: string;
  target?: string;
  exitCode?: number;
  cacheHit: boolean;
  error?: string;
}

interface Queue {
  queueKey: string;
  queued: number;
  executing: number;
  oldestQueuedAtMs?: number;
}

interface Worker {
  id: string;
  botId?: string;
  slots?: number;
  goneAtMs?: number;
  draining: boolean;
  leases: Operation[];
}

interface Sample {
  atMs: number;
  stores: Record<string, { usedBytes: number; maximumBytes: number; blobCount: number }>;
  cacheHits: number;
  cacheMisses: number;
}

/** The action page's link for an operation's action. */
export function actionLink(operation: Pick<Operation, 'action'>, content?: Child): HTMLElement {
  const [hash, size] = operation.action.split('/');
  return link(
    `/actions/${digestPath({ hash: hash ?? '', sizeBytes: Number(size) })}`,
    content ?? shortDigest(operation.action),
  );
}

function invocationLink(id: string | undefined): Child {
  return id ? link(`/invocations/${encodeURIComponent(id)}`, id.slice(0, 8)) : '';
}

/** The operation table used by several pages. */
export function operationTable(operations: readonly Operation[]): HTMLElement {
  if (operations.length === 0) return h('p', { class: 'muted' }, 'No operations.');
  return table(
    ['queued', 'status', 'action', 'mnemonic', 'target', 'tool', 'invocation', 'worker', 'exit', 'time'],
    operations.map((o) => [
      formatTime(o.queuedAtMs),
      status(o.status),
      actionLink(o),
      o.mnemonic ?? '',
      o.target ?? '',
      o.tool ? `${o.tool}${o.toolVersion ? ` ${o.toolVersion}` : ''}` : '',
      invocationLink(o.invocation),
      o.worker ?? '',
      o.exitCode ?? (o.error ? 'error' : ''),
      formatDuration(o.completedAtMs !== undefined ? o.completedAtMs - o.queuedAtMs : undefined),
    ]),
    [8, 9],
  );
}

export async function overviewPage(): Promise<void> {
  const [workers, queues, storage, operations] = await Promise.all([
    getJson<{ workers: Worker[] }>('/api/workers'),
    getJson<{ queues: Queue[] }>('/api/queues'),
    getJson<{ samples: Sample[] }>('/api/storage'),
    getJson<{ operations: Operation[] }>('/api/operations?limit=20'),
  ]);
  const live = workers.workers.filter((w) => w.goneAtMs === undefined);
  const slots = live.reduce((sum, w) => sum + Math.max(w.slots ?? 1, w.leases.length), 0);
  const busy = live.reduce((sum, w) => sum + w.leases.length, 0);
  const now = storage.samples.at(-1);
  const cas = now?.stores.cas;
  const lookups = (now?.cacheHits ?? 0) + (now?.cacheMisses ?? 0);
  show(
    h('h1', {}, 'Farm overview'),
    h(
      'div',
      { class: 'cards' },
      card('workers connected', live.length),
      card('busy slots', `${busy} / ${slots}`),
      card(
        'queued actions',
        queues.queues.reduce((sum, q) => sum + q.queued, 0),
      ),
      card(
        'executing',
        queues.queues.reduce((sum, q) => sum + q.executing, 0),
      ),
      card('CAS used', cas ? `${formatBytes(cas.usedBytes)} of ${formatBytes(cas.maximumBytes)}` : 'n/a'),
      card(
        'action cache hits',
        lookups > 0 ? `${Math.round((100 * (now?.cacheHits ?? 0)) / lookups)}% of ${lookups}` : 'no lookups yet',
      ),
    ),
    h('h2', {}, 'Queues'),
    queues.queues.length === 0
      ? h('p', { class: 'muted' }, 'Nothing queued or running.')
      : table(
          ['platform', 'queued', 'executing', 'oldest waiting'],
          queues.queues.map((q) => [
            q.queueKey,
            q.queued,
            q.executing,
            q.oldestQueuedAtMs ? formatDuration(Date.now() - q.oldestQueuedAtMs) : '',
          ]),
          [1, 2, 3],
        ),
    h('h2', {}, 'Latest operations ', link('/operations', '(all)')),
    operationTable(operations.operations),
  );
}

export async function operationsPage(): Promise<void> {
  const params = new URLSearchParams(location.search);
  const query = new URLSearchParams();
  for (const name of ['status', 'invocation', 'tool', 'worker', 'limit']) {
    const value = params.get(name);
    if (value) query.set(name, value);
  }
  const result = await getJson<{ operations: Operation[]; scanned: number; more: boolean }>(
    `/api/operations?${query.toString()}`,
  );
  const input = (name: string, label: string) =>
    h('label', {}, label, h('input', { name, value: params.get(name) ?? '', size: '24' }));
  const statusSelect = h('select', { name: 'status' });
  for (const value of ['', 'queued', 'executing', 'succeeded', 'failed', 'cached']) {
    const option = h('option', { value }, value === '' ? 'any' : value) as HTMLOptionElement;
    option.selected = (params.get('status') ?? '') === value;
    statusSelect.appendChild(option);
  }
  show(
    h('h1', {}, 'Operations'),
    h(
      'form',
      { class: 'filters', method: 'get', action: '/operations' },
      h('label', {}, 'status', statusSelect),
      input('invocation', 'invocation id'),
      input('tool', 'tool (e.g. bazel)'),
      input('worker', 'worker session'),
      h('button', { type: 'submit' }, 'Filter'),
    ),
    h(
      'p',
      { class: 'muted' },
      `${result.operations.length} shown, newest first${result.more ? ' (more match: narrow the filter or raise ?limit=)' : ''}.`,
    ),
    operationTable(result.operations),
  );
}

interface TextView {
  digest?: Digest;
  sizeBytes: number;
  text: string;
  truncated: boolean;
  binary: boolean;
  missing?: boolean;
}

interface ActionPage {
  digest: Digest;
  action?: {
    commandDigest?: Digest;
    inputRootDigest?: Digest;
    timeoutMs?: number;
    doNotCache: boolean;
    platform: { name: string; value: string }[];
  };
  command?: {
    arguments: string[];
    environment: { name: string; value: string }[];
    workingDirectory: string;
    outputPaths: string[];
    platform: { name: string; value: string }[];
  };
  operations: Operation[];
  result?: {
    exitCode: number;
    cacheHit: boolean;
    worker?: string;
    phasesMs: Record<string, number>;
    outputFiles: { path: string; digest?: Digest; executable: boolean }[];
    outputDirectories: { path: string; treeDigest?: Digest }[];
    outputSymlinks: { path: string; target: string }[];
    stdout: TextView;
    stderr: TextView;
    error?: string;
  };
}

function fileLinks(digest: Digest | undefined, name: string): Child[] {
  if (!digest) return ['(no digest)'];
  const query = `?name=${encodeURIComponent(name)}`;
  return [
    link(`/cas/file/${digestPath(digest)}${query}`, name),
    ' ',
    h('span', { class: 'muted' }, formatBytes(digest.sizeBytes)),
    ' ',
    link(`/cas/blob/${digestPath(digest)}${query}`, 'download'),
  ];
}

/** Shows stdout or stderr: its text, or why there is none to show. */
export function outputBlock(title: string, output: TextView, downloadName: string): HTMLElement {
  const heading = h('h2', {}, title, ' ');
  if (output.digest)
    heading.appendChild(link(`/cas/blob/${digestPath(output.digest)}?name=${downloadName}`, '(download)'));
  let body: Child;
  if (output.missing) body = h('p', { class: 'error' }, 'No longer in the CAS.');
  else if (output.binary) body = h('p', { class: 'muted' }, `Binary, ${formatBytes(output.sizeBytes)}: download it.`);
  else if (output.sizeBytes === 0) body = h('p', { class: 'muted' }, '(empty)');
  else body = h('pre', { class: `output output-${downloadName}` }, output.text);
  const note = output.truncated
    ? h('p', { class: 'muted' }, `Only the start is shown (${formatBytes(output.sizeBytes)} in all).`)
    : '';
  return h('section', {}, heading, body, note);
}

function phaseBars(phasesMs: Record<string, number>): HTMLElement {
  const entries = Object.entries(phasesMs);
  if (entries.length === 0) return h('p', { class: 'muted' }, 'No phase timings (served from the cache).');
  const longest = Math.max(...entries.map(([, ms]) => ms), 1);
  return table(
    ['phase', 'duration', ''],
    entries.map(([phase, ms]) => {
      const bar = h('div', { class: 'bar' });
      bar.style.width = `${Math.max(1, Math.round((300 * ms) / longest))}px`;
      return [phase.replace('_', ' '), formatDuration(ms), h('div', { class: 'bars' }, bar)];
    }),
    [1],
  );
}

export async function actionPage(path: string): Promise<void> {
  const page = await getJson<ActionPage>(`/api/actions/${path}`);
  const latest = page.operations[0];
  const result = page.result;
  const title = latest?.mnemonic ? `${latest.mnemonic} ${latest.target ?? ''}` : 'Action';
  const platform = page.command?.platform.length ? page.command.platform : (page.action?.platform ?? []);
  show(
    h('h1', {}, title),
    facts([
      ['action digest', h('span', { class: 'digest' }, `${page.digest.hash}/${page.digest.sizeBytes}`)],
      ['status', latest ? status(latest.status) : 'not run by this farm (or forgotten)'],
      ['exit code', result ? String(result.exitCode) : undefined],
      ['cache hit', result ? (result.cacheHit ? 'yes (served from the action cache)' : 'no (executed)') : undefined],
      ['worker', result?.worker ?? latest?.worker],
      ['tool', latest?.tool ? `${latest.tool} ${latest.toolVersion ?? ''}` : undefined],
      [
        'invocation',
        latest?.invocation
          ? link(`/invocations/${encodeURIComponent(latest.invocation)}`, latest.invocation)
          : undefined,
      ],
      ['error', result?.error ? h('span', { class: 'error' }, result.error) : undefined],
      ['timeout', page.action?.timeoutMs ? formatDuration(page.action.timeoutMs) : undefined],
      ['do not cache', page.action?.doNotCache ? 'yes' : undefined],
    ]),
    page.action ? '' : h('p', { class: 'error' }, 'The Action message is not in the CAS.'),
    h('h2', {}, 'Command line'),
    page.command
      ? h('pre', { class: 'command-line' }, shellQuote(page.command.arguments))
      : h('p', { class: 'muted' }, 'The Command message is not in the CAS.'),
    page.command
      ? facts([
          ['working directory', page.command.workingDirectory || '(the input root)'],
          ['outputs', page.command.outputPaths.join('\n')],
        ])
      : '',
    h('h2', {}, 'Environment'),
    page.command?.environment.length
      ? table(
          ['name', 'value'],
          page.command.environment.map((v) => [h('code', {}, v.name), h('code', {}, v.value)]),
        )
      : h('p', { class: 'muted' }, '(none)'),
    h('h2', {}, 'Platform'),
    platform.length
      ? table(
          ['property', 'value'],
          platform.map((p) => [p.name, p.value]),
        )
      : h('p', { class: 'muted' }, '(any worker)'),
    h('h2', {}, 'Inputs'),
    page.action?.inputRootDigest
      ? h(
          'p',
          {},
          link(`/cas/directory/${digestPath(page.action.inputRootDigest)}`, 'Browse the input tree'),
          ' ',
          h('span', { class: 'muted digest' }, shortDigest(page.action.inputRootDigest)),
        )
      : h('p', { class: 'muted' }, '(no input root)'),
    ...(result
      ? [
          h('h2', {}, 'Phases'),
          phaseBars(result.phasesMs),
          outputBlock('stdout', result.stdout, 'stdout'),
          outputBlock('stderr', result.stderr, 'stderr'),
          h('h2', {}, 'Outputs'),
          result.outputFiles.length + result.outputDirectories.length + result.outputSymlinks.length === 0
            ? h('p', { class: 'muted' }, '(none)')
            : table(
                ['path', 'content'],
                [
                  ...result.outputFiles.map((f) => [
                    h('code', {}, f.path),
                    h(
                      'span',
                      {},
                      ...fileLinks(f.digest, f.path.split('/').pop() ?? 'file'),
                      f.executable ? ' (executable)' : '',
                    ),
                  ]),
                  ...result.outputDirectories.map((d) => [
                    h('code', {}, `${d.path}/`),
                    d.treeDigest ? link(`/cas/tree/${digestPath(d.treeDigest)}`, 'browse the directory') : '',
                  ]),
                  ...result.outputSymlinks.map((s) => [h('code', {}, s.path), `→ ${s.target}`]),
                ],
              ),
        ]
      : [h('h2', {}, 'Result'), h('p', { class: 'muted' }, 'No finished operation of this action is known.')]),
    h('h2', {}, 'Operations of this action'),
    operationTable(page.operations),
  );
}
