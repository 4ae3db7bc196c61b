/// <reference lib="dom" />
/**
 * The CAS browser: look up a digest; walk a Directory (each subdirectory and
 * file a link), an output directory's Tree, or a file's contents (as text,
 * however hostile the text), with a download link for every file.
 */
import { getJson } from './api.js';
import { type Digest, digestPath, formatBytes, h, link, show, table } from './dom.js';
import { outputBlock } from './operationPages.js';

type Entry =
  | { kind: 'file'; name: string; digest: Digest; executable: boolean }
  | { kind: 'directory'; name: string; digest: Digest }
  | { kind: 'symlink'; name: string; target: string };

/** The path shown above a listing, carried from link to link in `?path=`. */
function pathOf(): string {
  return new URLSearchParams(location.search).get('path') ?? '';
}

function withPath(href: string, path: string): string {
  return `${href}${href.includes('?') ? '&' : '?'}path=${encodeURIComponent(path)}`;
}

function entryRow(entry: Entry, prefix: string): (string | HTMLElement)[] {
  const path = `${prefix}${entry.name}`;
  switch (entry.kind) {
    case 'directory':
      return [
        link(withPath(`/cas/directory/${digestPath(entry.digest)}`, path), `${entry.name}/`),
        'directory',
        '',
        '',
      ];
    case 'file':
      return [
        link(
          withPath(`/cas/file/${digestPath(entry.digest)}?name=${encodeURIComponent(entry.name)}`, path),
          entry.name,
        ),
        entry.executable ? 'executable file' : 'file',
        formatBytes(entry.digest.sizeBytes),
        link(`/cas/blob/${digestPath(entry.digest)}?name=${encodeURIComponent(entry.name)}`, 'download'),
      ];
    case 'symlink':
      return [h('code', {}, entry.name), `symlink → ${entry.target}`, '', ''];
  }
}

function lookupForm(): HTMLElement {
  const kind = h('select', { name: 'kind' });
  for (const value of ['directory', 'file', 'tree']) kind.appendChild(h('option', { value }, value));
  const form = h(
    'form',
    { class: 'filters' },
    h('label', {}, 'digest (HASH/SIZE)', h('input', { name: 'digest', size: '80', required: '' })),
    h('label', {}, 'as', kind),
    h('button', { type: 'submit' }, 'Open'),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const data = new FormData(form as HTMLFormElement);
    const digest = String(data.get('digest') ?? '').trim();
    const match = /^([0-9a-f]+)[/-](\d+)$/.exec(digest);
    if (!match) {
      form.appendChild(h('p', { class: 'error' }, 'A digest is HASH/SIZE, e.g. e3b0c442.../0'));
      return;
    }
    location.assign(
      `/cas/${String(data.get('kind'))}/${digestPath({ hash: match[1] as string, sizeBytes: Number(match[2]) })}`,
    );
  });
  return form;
}

export async function casPage(rest: string): Promise<void> {
  const match = /^(directory|file|tree)\/(.+)$/.exec(rest);
  if (!match) {
    show(h('h1', {}, 'Content-addressable storage'), h('p', {}, 'Open a blob by its digest.'), lookupForm());
    return;
  }
  const [, kind, digest] = match as unknown as [string, string, string];
  const path = pathOf();
  if (kind === 'directory') {
    const { entries } = await getJson<{ entries: Entry[] }>(`/api/cas/directory/${digest}`);
    show(
      h('h1', {}, `Directory ${path === '' ? '(root)' : `${path}/`}`),
      h('p', { class: 'muted digest' }, digest),
      entries.length === 0
        ? h('p', { class: 'muted' }, '(empty)')
        : table(
            ['name', 'kind', 'size', ''],
            entries.map((entry) => entryRow(entry, path === '' ? '' : `${path}/`)),
            [2],
          ),
    );
    return;
  }
  if (kind === 'tree') {
    const { entries } = await getJson<{ entries: { path: string; entry: Entry }[] }>(`/api/cas/tree/${digest}`);
    show(
      h('h1', {}, 'Output directory'),
      h('p', { class: 'muted digest' }, digest),
      table(
        ['path', 'kind', 'size', ''],
        entries.map(({ path: entryPath, entry }) => {
          const row = entryRow(entry, '');
          // A Tree's subdirectories live inside it, not in the CAS on their own: listed, not linked.
          row[0] =
            entry.kind === 'file'
              ? link(`/cas/file/${digestPath(entry.digest)}?name=${encodeURIComponent(entry.name)}`, entryPath)
              : entry.kind === 'directory'
                ? `${entryPath}/`
                : entryPath;
          return row;
        }),
        [2],
      ),
    );
    return;
  }
  const name = new URLSearchParams(location.search).get('name') ?? 'file';
  const view = await getJson<{
    digest?: Digest;
    sizeBytes: number;
    text: string;
    truncated: boolean;
    binary: boolean;
  }>(`/api/cas/text/${digest}`);
  show(
    h('h1', {}, path || name),
    h('p', { class: 'muted digest' }, digest),
    outputBlock('Contents', view, encodeURIComponent(name)),
  );
}
