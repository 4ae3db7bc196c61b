/// <reference lib="dom" />
/**
 * The browser side's only way to put things on the page: elements built with
 * text nodes and attributes, never HTML strings, so an action name, an argument
 * or a file's contents always shows as the text it is. Links only ever point
 * into the farm (paths built here from validated digests and encoded names).
 * Also the formatting every page shares (sizes, durations, times, digests).
 */

/** Something that can be a child of an element; false, null and undefined are skipped. */
export type Child = Node | string | number | false | null | undefined;

/** Builds an element with attributes (set as attributes, never as HTML) and children (as text or nodes). */
export function h(tag: string, attributes: Record<string, string | undefined> = {}, ...children: Child[]): HTMLElement {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined) continue;
    if (name === 'href' && !isFarmPath(value)) throw new Error(`refusing a link outside the farm: ${value}`);
    element.setAttribute(name, value);
  }
  append(element, children);
  return element;
}

export function append(parent: Node, children: readonly Child[]): void {
  for (const child of children) {
    if (child === false || child === null || child === undefined) continue;
    parent.appendChild(typeof child === 'string' || typeof child === 'number' ? text(child) : child);
  }
}

export function text(value: string | number): Text {
  return document.createTextNode(String(value));
}

/** A path on this farm: starts with one slash (not `//host`), or is a query. */
function isFarmPath(href: string): boolean {
  return (href.startsWith('/') && !href.startsWith('//')) || href.startsWith('?');
}

export function link(href: string, ...children: Child[]): HTMLElement {
  return h('a', { href }, ...children);
}

/** Replaces the page's content. */
export function show(...children: Child[]): void {
  const main = document.getElementById('main') as HTMLElement;
  main.replaceChildren();
  append(main, children);
}

/** A table with a header row; each row is a list of cells (a cell may be an element or text). */
export function table(
  headers: readonly string[],
  rows: readonly (readonly Child[])[],
  numeric: number[] = [],
): HTMLElement {
  const head = h(
    'tr',
    {},
    ...headers.map((title, i) => h('th', numeric.includes(i) ? { class: 'number' } : {}, title)),
  );
  const body = rows.map((cells) =>
    h('tr', {}, ...cells.map((cell, i) => h('td', numeric.includes(i) ? { class: 'number' } : {}, cell))),
  );
  return h('table', {}, h('thead', {}, head), h('tbody', {}, ...body));
}

/** A definition list of facts; entries with an undefined value are left out. */
export function facts(entries: readonly [string, Child][]): HTMLElement {
  const list = h('dl', { class: 'facts' });
  for (const [term, value] of entries) {
    if (value === undefined || value === null || value === false || value === '') continue;
    append(list, [h('dt', {}, term), h('dd', {}, value)]);
  }
  return list;
}

export function status(name: string): HTMLElement {
  return h('span', { class: `status status-${name.replace(/[^A-Za-z_-]/g, '')}` }, name);
}

export function card(label: string, value: Child): HTMLElement {
  return h('div', { class: 'card' }, h('div', { class: 'value' }, value), h('div', { class: 'label' }, label));
}

export interface Digest {
  readonly hash: string;
  readonly sizeBytes: number;
}

/** `HASH/SIZE`, as digests appear in paths. */
export function digestPath(digest: Digest): string {
  return `${encodeURIComponent(digest.hash)}/${encodeURIComponent(String(digest.sizeBytes))}`;
}

/** A digest shortened for tables: the first 12 characters of the hash and the size. */
export function shortDigest(digest: Digest | string): string {
  const [hash, size] = typeof digest === 'string' ? digest.split('/') : [digest.hash, String(digest.sizeBytes)];
  return `${(hash ?? '').slice(0, 12)}…/${size ?? ''}`;
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

export function formatDuration(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return '';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  const minutes = Math.floor(ms / 60_000);
  return `${minutes} min ${Math.round((ms % 60_000) / 1000)} s`;
}

export function formatTime(ms: number | undefined): string {
  if (ms === undefined) return '';
  const date = new Date(ms);
  const today = new Date();
  const time = date.toLocaleTimeString([], { hour12: false });
  return date.toDateString() === today.toDateString() ? time : `${date.toISOString().slice(0, 10)} ${time}`;
}

/** Joins arguments into one line a shell would split the same way. */
export function shellQuote(args: readonly string[]): string {
  return args.map((arg) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`)).join(' ');
}
