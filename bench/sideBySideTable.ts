/**
 * Turns the rounds of the side-by-side benchmark into its table: the best
 * round of each server for each figure, Granary's ratio to the best other
 * server (the null sink, which only shows the client's ceiling, is never
 * "the best other"), and how far the rounds spread (the run's noise).
 */
import { formatNumber } from './report.js';

export type ServerRole = 'granary' | 'other' | 'sink';

export interface ServerColumn {
  label: string;
  role: ServerRole;
  /** A sink's own heading note, in place of the table's `sinkNote`. */
  sinkNote?: string;
}

/** Every round's value of one figure, per server label. */
export interface FigureRounds {
  title: string;
  unit: string;
  /** Latencies: the smallest value is the best. */
  lowerIsBetter: boolean;
  rounds: Map<string, number[]>;
}

export interface SummaryRow {
  title: string;
  unit: string;
  lowerIsBetter: boolean;
  /** Best round per server; absent when the server was not measured (or failed). */
  best: Map<string, number>;
  /**
   * Granary against the best other server, oriented so that 1.0 or more means
   * Granary is at least as good: rates divide Granary by the other, latencies
   * the other by Granary.
   */
  ratio?: { value: number; against: string };
  /** Largest relative gap between a server's best and worst round (0.1 = 10%). */
  spread: number;
}

export function summarise(figure: FigureRounds, columns: readonly ServerColumn[]): SummaryRow {
  const best = new Map<string, number>();
  let spread = 0;
  for (const column of columns) {
    const values = figure.rounds.get(column.label) ?? [];
    if (values.length === 0) continue;
    const top = figure.lowerIsBetter ? Math.min(...values) : Math.max(...values);
    const bottom = figure.lowerIsBetter ? Math.max(...values) : Math.min(...values);
    best.set(column.label, top);
    if (top > 0) spread = Math.max(spread, Math.abs(top - bottom) / top);
  }
  const row: SummaryRow = { title: figure.title, unit: figure.unit, lowerIsBetter: figure.lowerIsBetter, best, spread };
  const granary = columns.find((c) => c.role === 'granary');
  const granaryBest = granary ? best.get(granary.label) : undefined;
  let bestOther: { label: string; value: number } | undefined;
  for (const column of columns) {
    const value = best.get(column.label);
    if (column.role !== 'other' || value === undefined) continue;
    const better =
      bestOther === undefined || (figure.lowerIsBetter ? value < bestOther.value : value > bestOther.value);
    if (better) bestOther = { label: column.label, value };
  }
  if (granaryBest !== undefined && bestOther !== undefined && granaryBest > 0 && bestOther.value > 0) {
    const value = figure.lowerIsBetter ? bestOther.value / granaryBest : granaryBest / bestOther.value;
    row.ratio = { value, against: bestOther.label };
  }
  return row;
}

/**
 * The table as aligned text lines (also valid Markdown). The null sink's
 * column heading carries `sinkNote` (what its figures mean in this table).
 */
export function formatTable(
  rows: readonly SummaryRow[],
  columns: readonly ServerColumn[],
  sinkNote = 'client ceiling',
): string[] {
  const heading = (column: ServerColumn) =>
    column.role === 'sink' ? `${column.label} (${column.sinkNote ?? sinkNote})` : column.label;
  const header = ['figure', 'unit', ...columns.map(heading), 'Granary vs best other', 'spread'];
  const body = rows.map((row) => [
    row.title,
    row.unit,
    ...columns.map((c) => {
      const value = row.best.get(c.label);
      return value === undefined ? '-' : formatNumber(value);
    }),
    row.ratio ? `${row.ratio.value.toFixed(2)}x (${row.ratio.against})` : '-',
    `${(row.spread * 100).toFixed(0)}%`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => (r[i] as string).length)));
  const numeric = (i: number) => i >= 2 && i < header.length - 2;
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => (numeric(i) ? c.padStart(widths[i] as number) : c.padEnd(widths[i] as number))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (numeric(i) ? `${'-'.repeat(w + 1)}:` : '-'.repeat(w + 2))).join('|')}|`;
  return [line(header), rule, ...body.map(line)];
}
