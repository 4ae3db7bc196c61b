/**
 * Where a build's time went (`granary build --timings`): from the builder's
 * events, how long each element spent in each step (staging its sources,
 * staging its input root, uploading its Action, queued on the farm, building,
 * collecting its outputs, recording its artifact), per element and in total.
 */
import type { ElementEvent } from './builder.js';

interface Open {
  step: string;
  sinceMs: number;
}

export class BuildTimings {
  private readonly open = new Map<string, Open>();
  /** element -> step -> milliseconds */
  private readonly spent = new Map<string, Map<string, number>>();
  private readonly order: string[] = [];

  constructor(private readonly now: () => number = Date.now) {}

  handle(event: ElementEvent): void {
    const time = this.now();
    const previous = this.open.get(event.element);
    if (previous) {
      const steps = this.spent.get(event.element) ?? new Map<string, number>();
      steps.set(previous.step, (steps.get(previous.step) ?? 0) + time - previous.sinceMs);
      this.spent.set(event.element, steps);
      this.open.delete(event.element);
    }
    if (event.state === 'running' && event.step) {
      if (!this.order.includes(event.element)) this.order.push(event.element);
      this.open.set(event.element, { step: event.step, sinceMs: time });
    }
  }

  /** Lines of a table: one per element, then the totals per step (seconds). */
  report(): string[] {
    const steps: string[] = [];
    for (const perStep of this.spent.values())
      for (const step of perStep.keys()) if (!steps.includes(step)) steps.push(step);
    const seconds = (ms: number | undefined) => (ms === undefined ? '-' : (ms / 1000).toFixed(1));
    const width = Math.max(7, ...this.order.map((name) => name.length));
    const lines = [`${'element'.padEnd(width)}  ${steps.map((step) => step.padStart(10)).join(' ')}`];
    const totals = new Map<string, number>();
    for (const element of this.order) {
      const perStep = this.spent.get(element) ?? new Map<string, number>();
      for (const [step, ms] of perStep) totals.set(step, (totals.get(step) ?? 0) + ms);
      lines.push(`${element.padEnd(width)}  ${steps.map((step) => seconds(perStep.get(step)).padStart(10)).join(' ')}`);
    }
    lines.push(`${'(total)'.padEnd(width)}  ${steps.map((step) => seconds(totals.get(step)).padStart(10)).join(' ')}`);
    return lines;
  }
}
