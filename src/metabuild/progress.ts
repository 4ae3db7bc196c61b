/**
 * Shows a build's progress: on a terminal, a live block with counts (done,
 * running, queued), the step each running element is in and elapsed times;
 * otherwise one plain line per state change, suitable for logs and CI.
 */
import type { ElementEvent, ElementState } from './builder.js';

interface Row {
  state: ElementState;
  step?: string;
  sinceMs: number;
}

export class ProgressDisplay {
  private readonly rows = new Map<string, Row>();
  private readonly startMs = Date.now();
  private timer: NodeJS.Timeout | undefined;
  private drawnLines = 0;

  constructor(private readonly out: NodeJS.WriteStream = process.stderr) {
    if (this.live) {
      this.timer = setInterval(() => this.draw(), 250);
      this.timer.unref();
    }
  }

  private get live(): boolean {
    return Boolean(this.out.isTTY) && process.env.TERM !== 'dumb';
  }

  handle(event: ElementEvent): void {
    const previous = this.rows.get(event.element);
    const row: Row = {
      state: event.state,
      step: event.step,
      sinceMs: previous?.state === event.state ? previous.sinceMs : Date.now(),
    };
    this.rows.set(event.element, row);
    if (this.live) {
      if (event.state === 'failed' || event.state === 'built') this.printAbove(this.lineFor(event, row));
      return;
    }
    if (event.state === 'running' && previous?.state === 'running' && previous.step === event.step) return;
    this.out.write(`${this.lineFor(event, row)}\n`);
  }

  finish(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.live) {
      this.clear();
      this.out.write(`${this.summary()}\n`);
    }
  }

  private lineFor(event: ElementEvent, row: Row): string {
    const time = `[${clock(Date.now() - this.startMs)}]`;
    const step = row.step ? ` (${row.step})` : '';
    const detail = event.detail ? `\n${event.detail}` : '';
    return `${time} ${event.state.padEnd(8)} ${event.element}${step}${detail}`;
  }

  private summary(): string {
    const count = (...states: ElementState[]) => [...this.rows.values()].filter((r) => states.includes(r.state)).length;
    return (
      `[${clock(Date.now() - this.startMs)}] done ${count('built', 'cached')}/${this.rows.size}, ` +
      `running ${count('running')}, queued ${count('waiting', 'queued', 'buildable')}` +
      (count('failed') ? `, failed ${count('failed')}` : '') +
      (count('skipped') ? `, skipped ${count('skipped')}` : '')
    );
  }

  private draw(): void {
    this.clear();
    const lines = [this.summary()];
    for (const [name, row] of this.rows) {
      if (row.state !== 'running') continue;
      lines.push(`  ${name}: ${row.step ?? 'running'} (${clock(Date.now() - row.sinceMs)})`);
    }
    this.out.write(`${lines.join('\n')}\n`);
    this.drawnLines = lines.length;
  }

  private printAbove(line: string): void {
    this.clear();
    this.out.write(`${line}\n`);
    this.draw();
  }

  private clear(): void {
    if (this.drawnLines > 0) this.out.write(`\x1b[${this.drawnLines}A\x1b[J`);
    this.drawnLines = 0;
  }
}

function clock(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  return `${String(Math.floor(seconds / 60)).padStart(2, '0')}:${String(seconds % 60).padStart(2, '0')}`;
}
