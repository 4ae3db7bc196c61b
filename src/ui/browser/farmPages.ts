/// <reference lib="dom" />
/**
 * The pages about the farm itself: workers with what they offer and the leases
 * they hold, and storage (how full each store is, and the action cache's hit
 * rate) over time as charts.
 */
import { getJson } from './api.js';
import { lineChart } from './charts.js';
import { card, formatBytes, formatDuration, formatTime, h, show, status, table } from './dom.js';
import { actionLink, type Operation } from './operationPages.js';

interface Worker {
  id: string;
  botId?: string;
  properties: { name: string; value: string }[];
  slots?: number;
  lastSeenMs: number;
  draining: boolean;
  goneAtMs?: number;
  leases: Operation[];
}

export async function workersPage(): Promise<void> {
  const { workers } = await getJson<{ workers: Worker[] }>('/api/workers');
  const rows = workers.map((w) => [
    h('div', {}, h('strong', {}, w.botId ?? w.id), h('div', { class: 'muted digest' }, w.id)),
    w.goneAtMs !== undefined
      ? status(`gone ${formatTime(w.goneAtMs)}`)
      : w.draining
        ? status('draining')
        : status(w.leases.length > 0 ? 'busy' : 'idle'),
    `${w.leases.length} / ${w.slots ?? 1}`,
    h('code', {}, w.properties.map((p) => `${p.name}=${p.value}`).join('\n')),
    w.leases.length === 0
      ? ''
      : h(
          'ul',
          {},
          ...w.leases.map((lease) =>
            h(
              'li',
              {},
              actionLink(lease, `${lease.mnemonic ?? 'action'} ${lease.target ?? ''}`),
              ` running ${formatDuration(lease.startedAtMs ? Date.now() - lease.startedAtMs : undefined)}`,
            ),
          ),
        ),
    formatDuration(Date.now() - w.lastSeenMs),
  ]);
  show(
    h('h1', {}, 'Workers'),
    workers.length === 0
      ? h('p', { class: 'muted' }, 'No worker is connected.')
      : table(['worker', 'state', 'leases / slots', 'platform', 'current leases', 'last seen'], rows, [2]),
  );
}

interface Sample {
  atMs: number;
  stores: Record<string, { usedBytes: number; maximumBytes: number; blobCount: number }>;
  cacheHits: number;
  cacheMisses: number;
}

const COLORS = ['#1f6feb', '#bf8700', '#8250df', '#1a7f37'];

export async function storagePage(): Promise<void> {
  const { samples } = await getJson<{ samples: Sample[] }>('/api/storage');
  const latest = samples.at(-1);
  const storeNames = Object.keys(latest?.stores ?? {});
  const usage = storeNames.map((name, i) => ({
    name,
    color: COLORS[i % COLORS.length] as string,
    points: samples.filter((s) => s.stores[name]).map((s) => [s.atMs, s.stores[name]?.usedBytes ?? 0] as const),
  }));
  // Hit rate between consecutive samples (lookups in that interval); intervals without lookups are skipped.
  const rate: [number, number][] = [];
  for (let i = 1; i < samples.length; i++) {
    const before = samples[i - 1] as Sample;
    const after = samples[i] as Sample;
    const hits = after.cacheHits - before.cacheHits;
    const lookups = hits + after.cacheMisses - before.cacheMisses;
    if (lookups > 0) rate.push([after.atMs, hits / lookups]);
  }
  const lookups = (latest?.cacheHits ?? 0) + (latest?.cacheMisses ?? 0);
  show(
    h('h1', {}, 'Storage'),
    h(
      'div',
      { class: 'cards' },
      ...storeNames.map((name) => {
        const store = latest?.stores[name];
        return card(
          `${name}: ${store?.blobCount ?? 0} blobs`,
          store ? `${formatBytes(store.usedBytes)} / ${formatBytes(store.maximumBytes)}` : 'n/a',
        );
      }),
      card(
        'action cache hit rate since start',
        lookups > 0 ? `${Math.round((100 * (latest?.cacheHits ?? 0)) / lookups)}% of ${lookups}` : 'no lookups yet',
      ),
    ),
    lineChart({
      title: 'Bytes stored',
      series: usage,
      formatValue: formatBytes,
    }),
    lineChart({
      title: 'Action cache hit rate per interval',
      series: [{ name: 'hit rate', color: '#1a7f37', points: rate }],
      formatValue: (value) => `${Math.round(value * 100)}%`,
      minimumTop: 1,
    }),
    h(
      'p',
      { class: 'muted' },
      `${samples.length} samples since ${formatTime(samples[0]?.atMs)}; /metrics has the same figures for Prometheus.`,
    ),
  );
}
