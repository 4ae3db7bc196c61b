/**
 * Collects measurements, prints each as it is taken (with its ratio to the
 * machine's raw SHA-256 speed when it is a byte throughput, and its target when
 * it has one) and prints a summary table at the end.
 */

/** Byte throughputs are in MB/s, where 1 MB = 10^6 bytes. */
export type Unit = 'MB/s' | 'blobs/s' | 'digests/s' | 'hits/s' | 'actions/s' | 'ms' | 's' | 'x';

export interface Target {
  /** The figure must be at least this (rates)... */
  minimum?: number;
  /** ...or at most this (latencies)... */
  maximum?: number;
  /** ...as a fraction of raw SHA-256 MB/s (byte throughputs), or in the figure's unit. */
  relativeToSha256?: boolean;
}

export interface Measurement {
  group: string;
  name: string;
  unit: Unit;
  /** The reported figure: the median of the runs (or the only run). */
  value: number;
  /** The best run, when there were several. */
  best?: number;
  /** For latencies: smaller is better (informational; targets say so with `maximum`). */
  lowerIsBetter?: boolean;
  runs?: number;
  target?: Target;
  note?: string;
}

export const SHA256_GROUP = 'machine';
export const SHA256_NAME = 'raw SHA-256 (node:crypto, 64 MiB buffer)';

export class Report {
  private readonly measurements: Measurement[] = [];
  private sha256MBps: number | undefined;

  constructor(private readonly out: (line: string) => void = console.log) {}

  /** Sets the reference for ratios; call before recording byte throughputs. */
  setSha256(mbPerSecond: number): void {
    this.sha256MBps = mbPerSecond;
  }

  record(measurement: Measurement): void {
    this.measurements.push(measurement);
    const parts = [`  ${pad(measurement.name, 52)} ${formatValue(measurement.value, measurement.unit)}`];
    const ratio = this.ratio(measurement);
    if (ratio !== undefined && !isSha256(measurement)) parts.push(`${formatPercent(ratio)} of SHA-256`);
    if (measurement.best !== undefined && measurement.runs !== undefined && measurement.runs > 1) {
      parts.push(`median of ${measurement.runs}, best ${formatNumber(measurement.best)}`);
    }
    const verdict = this.verdict(measurement);
    if (verdict) parts.push(`target ${verdict.text}: ${verdict.pass ? 'PASS' : 'FAIL'}`);
    if (measurement.note) parts.push(measurement.note);
    this.out(parts.join('  |  ').trimEnd());
  }

  section(title: string): void {
    this.out('');
    this.out(`== ${title}`);
  }

  /** Prints every measurement in one table; returns false when a target was missed. */
  printSummary(): boolean {
    const rows = this.measurements.map((m) => {
      const ratio = isSha256(m) ? undefined : this.ratio(m);
      const verdict = this.verdict(m);
      return [
        m.group,
        m.name,
        formatNumber(m.value),
        m.unit,
        ratio === undefined ? '' : formatPercent(ratio),
        verdict ? `${verdict.text} ${verdict.pass ? 'PASS' : 'FAIL'}` : '',
      ];
    });
    const header = ['group', 'measurement', 'value', 'unit', 'vs SHA-256', 'target'];
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
    const line = (cells: string[]) =>
      cells
        .map((c, i) => (i === 2 || i === 4 ? c.padStart(widths[i] as number) : c.padEnd(widths[i] as number)))
        .join('  ')
        .trimEnd();
    this.out('');
    this.out('== Summary (MB/s = 10^6 bytes/s; byte throughputs are medians of their runs)');
    this.out(line(header));
    this.out(line(widths.map((w) => '-'.repeat(w))));
    for (const row of rows) this.out(line(row));
    return this.measurements.every((m) => this.verdict(m)?.pass ?? true);
  }

  private ratio(m: Measurement): number | undefined {
    if (m.unit !== 'MB/s' || this.sha256MBps === undefined) return undefined;
    return m.value / this.sha256MBps;
  }

  private verdict(m: Measurement): { text: string; pass: boolean } | undefined {
    const target = m.target;
    if (!target) return undefined;
    const checks: Array<{ text: string; pass: boolean }> = [];
    if (target.relativeToSha256) {
      const ratio = this.ratio(m);
      if (ratio === undefined) return undefined;
      if (target.minimum !== undefined) {
        checks.push({ text: `>= ${formatPercent(target.minimum)} of SHA-256`, pass: ratio >= target.minimum });
      }
      if (target.maximum !== undefined) {
        checks.push({ text: `<= ${formatPercent(target.maximum)} of SHA-256`, pass: ratio <= target.maximum });
      }
    } else {
      if (target.minimum !== undefined) {
        checks.push({ text: `>= ${formatNumber(target.minimum)} ${m.unit}`, pass: m.value >= target.minimum });
      }
      if (target.maximum !== undefined) {
        checks.push({ text: `<= ${formatNumber(target.maximum)} ${m.unit}`, pass: m.value <= target.maximum });
      }
    }
    if (checks.length === 0) return undefined;
    return { text: checks.map((c) => c.text).join(', '), pass: checks.every((c) => c.pass) };
  }
}

export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  if (value >= 100) return Math.round(value).toLocaleString('en-US');
  return value.toFixed(value >= 10 ? 1 : 2);
}

function formatValue(value: number, unit: Unit): string {
  return `${formatNumber(value).padStart(10)} ${unit.padEnd(9)}`;
}

export function formatPercent(ratio: number): string {
  return `${(ratio * 100).toFixed(0)}%`;
}

function isSha256(m: Measurement): boolean {
  return m.group === SHA256_GROUP && m.name === SHA256_NAME;
}

function pad(text: string, width: number): string {
  return text.length >= width ? text : text.padEnd(width);
}
