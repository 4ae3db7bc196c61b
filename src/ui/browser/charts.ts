/// <reference lib="dom" />
/**
 * Line charts as inline SVG, built element by element (no library, nothing
 * fetched): a time axis, a value axis with a few gridlines, and one polyline per
 * series. Enough for storage use and cache hit rate over the last hours.
 */
import { h } from './dom.js';

const SVG = 'http://www.w3.org/2000/svg';

export interface Series {
  readonly name: string;
  readonly color: string;
  /** [epoch ms, value] pairs, oldest first. */
  readonly points: readonly (readonly [number, number])[];
}

export interface ChartOptions {
  readonly title: string;
  readonly series: readonly Series[];
  readonly formatValue: (value: number) => string;
  /** The value axis goes at least this high (e.g. the store's capacity, or 1 for a rate). */
  readonly minimumTop?: number;
  readonly width?: number;
  readonly height?: number;
}

function svg(tag: string, attributes: Record<string, string | number>): SVGElement {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
  return element;
}

function label(x: number, y: number, content: string, anchor: 'start' | 'middle' | 'end'): SVGElement {
  const element = svg('text', { x, y, 'text-anchor': anchor });
  element.textContent = content;
  return element;
}

/** A figure with the chart and its legend. */
export function lineChart(options: ChartOptions): HTMLElement {
  const width = options.width ?? 720;
  const height = options.height ?? 220;
  const left = 72;
  const right = 16;
  const top = 12;
  const bottom = 28;
  const all = options.series.flatMap((s) => s.points);
  const figure = h('figure', { class: 'chart' }, h('figcaption', {}, options.title));
  const chart = svg('svg', {
    class: 'chart',
    width,
    height,
    viewBox: `0 0 ${width} ${height}`,
    role: 'img',
    'aria-label': options.title,
  });
  figure.appendChild(chart);
  if (all.length === 0) {
    chart.appendChild(label(width / 2, height / 2, 'no data yet', 'middle'));
    return figure;
  }
  const firstMs = Math.min(...all.map((p) => p[0]));
  const lastMs = Math.max(...all.map((p) => p[0]), firstMs + 1000);
  const topValue = Math.max(options.minimumTop ?? 0, ...all.map((p) => p[1])) || 1;
  const x = (ms: number) => left + ((ms - firstMs) / (lastMs - firstMs)) * (width - left - right);
  const y = (value: number) => top + (1 - value / topValue) * (height - top - bottom);
  for (let step = 0; step <= 4; step++) {
    const value = (topValue * step) / 4;
    chart.appendChild(svg('line', { class: 'grid', x1: left, x2: width - right, y1: y(value), y2: y(value) }));
    chart.appendChild(label(left - 6, y(value) + 4, options.formatValue(value), 'end'));
  }
  chart.appendChild(svg('line', { class: 'axis', x1: left, x2: left, y1: top, y2: height - bottom }));
  chart.appendChild(
    svg('line', { class: 'axis', x1: left, x2: width - right, y1: height - bottom, y2: height - bottom }),
  );
  const time = (ms: number) =>
    new Date(ms).toLocaleTimeString([], { hour12: false, hour: '2-digit', minute: '2-digit' });
  chart.appendChild(label(left, height - 8, time(firstMs), 'start'));
  chart.appendChild(label(width - right, height - 8, time(lastMs), 'end'));
  for (const series of options.series) {
    if (series.points.length === 0) continue;
    const points = series.points.map(([ms, value]) => `${x(ms).toFixed(1)},${y(value).toFixed(1)}`).join(' ');
    chart.appendChild(svg('polyline', { class: 'series', points, stroke: series.color }));
    if (series.points.length === 1) {
      const [ms, value] = series.points[0] as readonly [number, number];
      chart.appendChild(svg('circle', { cx: x(ms), cy: y(value), r: 3, fill: series.color }));
    }
  }
  const legend = h('div', { class: 'muted' });
  for (const series of options.series) {
    const swatch = h('span', { class: 'swatch' }, '■ ');
    swatch.style.color = series.color;
    legend.append(swatch, `${series.name}   `);
  }
  figure.appendChild(legend);
  return figure;
}
