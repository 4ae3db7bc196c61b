/**
 * BuildStream 2's staging warnings, for projects that make them fatal.
 *
 * When an element stages its dependencies (build, script and compose
 * elements; once per staging location), a file or symlink of a later
 * artifact that replaces one an earlier artifact staged is an overlap. The
 * `overlaps` warning names it unless every element that overwrote it lists
 * the path (relative to the location, with a leading '/') in its
 * `public: bst: overlap-whitelist` globs; a replaced file staged at an
 * earlier location is an overlap regardless of whitelists. A file that would
 * replace a non-empty directory is not staged at all: the `unstaged-files`
 * warning. Granary shows no warnings, so it checks only when the element's
 * project lists one of them in `fatal-warnings`, and then fails the element
 * as BuildStream 2.8 does.
 */
import { backgroundContext } from '../context/requestContext.js';
import type { Digest } from '../digest/digest.js';
import type { BlobStore } from '../storage/blobStore.js';
import { type ListedEntry, listTree } from '../tree/list.js';
import type { Element, Project } from './project/index.js';
import { globToRegExpSource } from './splitFilter2.js';

/** The staging warnings Granary can make fatal. */
export const STAGING_WARNINGS = ['overlaps', 'unstaged-files'] as const;
export type StagingWarning = (typeof STAGING_WARNINGS)[number];

/** One dependency's artifact as it is staged. */
export interface StagedArtifact {
  readonly element: string;
  readonly entries: readonly ListedEntry[];
  /** The element's overlap-whitelist globs, variables expanded. */
  readonly whitelist: readonly string[];
}

/** The artifacts staged at one location, in staging order. */
export interface StagingSession {
  readonly location: string;
  readonly artifacts: readonly StagedArtifact[];
}

/** What staging would warn about: the warning and its details, in the order found. */
export interface StagingReport {
  readonly warning: StagingWarning;
  readonly detail: string;
}

/** Replays the staging of `sessions` and returns the warnings BuildStream 2 would give. */
export function stagingWarnings(sessions: readonly StagingSession[]): StagingReport[] {
  const kinds = new Map<string, 'directory' | 'file'>();
  const nonEmpty = new Set<string>();
  /** Absolute path -> the element that staged the file there in an earlier session. */
  const stagedBefore = new Map<string, { element: string; location: string }>();
  const reports: StagingReport[] = [];
  const addEntry = (path: string, kind: 'directory' | 'file') => {
    kinds.set(path, kind);
    for (let slash = path.lastIndexOf('/'); slash > 0; slash = path.lastIndexOf('/', slash - 1)) {
      nonEmpty.add(path.slice(0, slash));
    }
    nonEmpty.add('');
  };
  for (const session of sessions) {
    const base = session.location.replace(/^\/+|\/+$/g, '');
    const absolute = (relative: string) => (base ? `${base}/${relative}` : relative);
    const writtenBy = new Map<string, string>();
    const overlaps = new Map<string, string[]>();
    const unstaged = new Map<string, string[]>();
    for (const artifact of session.artifacts) {
      for (const entry of artifact.entries) {
        const path = absolute(entry.path);
        const existing = kinds.get(path);
        if (entry.kind === 'directory') {
          if (existing === undefined) addEntry(path, 'directory');
          continue;
        }
        if (existing === 'directory') {
          if (nonEmpty.has(path)) {
            unstaged.set(artifact.element, [...(unstaged.get(artifact.element) ?? []), entry.path]);
            continue;
          }
        } else if (existing === 'file') {
          // The elements that wrote the path, in order; the first is the one whose file was replaced first.
          let list = overlaps.get(entry.path);
          if (!list) {
            const first = writtenBy.get(entry.path);
            list = first === undefined ? [] : [first];
            overlaps.set(entry.path, list);
          }
          list.push(artifact.element);
        }
        addEntry(path, 'file');
        if (!writtenBy.has(entry.path)) writtenBy.set(entry.path, artifact.element);
      }
    }
    const whitelists = new Map(session.artifacts.map((a) => [a.element, whitelistMatcher(a.whitelist)]));
    const overlapLines: string[] = [];
    /** Files replaced that no element of this session had staged: staged at an earlier location. */
    const external = new Map<string, string>();
    for (const [path, elements] of overlaps) {
      if (elements.length === 1) {
        external.set(path, elements[0] as string);
        continue;
      }
      const offending = elements.slice(1).filter((element) => !whitelists.get(element)?.(`/${path}`));
      if (offending.length === 0) continue;
      overlapLines.push(
        `/${absolute(path)}: ${offending.join(' and ')} ${offending.length === 1 ? 'is' : 'are'} not permitted to overlap other elements, order ${[...elements].reverse().join(' above ')}`,
      );
    }
    if (overlapLines.length > 0) {
      reports.push({
        warning: 'overlaps',
        detail: `Non-whitelisted overlaps detected; staged files overwrite existing files in staging area: ${session.location}\n${overlapLines.join('\n')}`,
      });
    }
    if (unstaged.size > 0) {
      const lines = [...unstaged].map(
        ([element, paths]) => `From ${element}:\n${paths.map((p) => `  /${absolute(p)}`).join('\n')}`,
      );
      reports.push({
        warning: 'unstaged-files',
        detail: `Not staging files which would replace non-empty directories in staging area: ${session.location}\n${lines.join('\n')}`,
      });
    }
    if (external.size > 0) {
      const lines = [...external].map(([path, element]) => {
        const previous = stagedBefore.get(absolute(path));
        const earlier = previous ? ` previously staged by ${previous.element} in: ${previous.location}` : '';
        return `/${absolute(path)}: ${element} overlaps files${earlier}`;
      });
      reports.push({
        warning: 'overlaps',
        detail: `Overlaps detected while staging elements into: ${session.location}\n${lines.join('\n')}`,
      });
    }
    for (const [path, element] of writtenBy) stagedBefore.set(absolute(path), { element, location: session.location });
  }
  return reports;
}

function whitelistMatcher(globs: readonly string[]): (path: string) => boolean {
  if (globs.length === 0) return () => false;
  const expression = new RegExp(`^(?:${globs.map(globToRegExpSource).join('|')})$`, 's');
  return (path) => expression.test(path);
}

/** What fatalStagingWarning needs to list the staged artifacts. */
export interface StagingLookup {
  readonly cas: BlobStore;
  readonly project: Project;
  artifactRoot(name: string): Digest;
}

/**
 * The message of the first staging warning that `element`'s project makes
 * fatal, or undefined. `layout` lists, per staging location in staging order,
 * the elements staged there in order. Lists artifacts only when the project
 * makes a staging warning fatal, so other projects pay nothing.
 */
export async function fatalStagingWarning(
  lookup: StagingLookup,
  element: Element,
  layout: ReadonlyArray<readonly [string, readonly string[]]>,
): Promise<string | undefined> {
  const fatal = fatalStagingWarnings(element);
  if (fatal.length === 0) return undefined;
  const listings = new Map<string, Promise<ListedEntry[]>>();
  const listing = (name: string) => {
    let found = listings.get(name);
    if (!found) {
      found = listTree(backgroundContext(), lookup.cas, lookup.artifactRoot(name));
      listings.set(name, found);
    }
    return found;
  };
  const sessions: StagingSession[] = [];
  for (const [location, names] of layout) {
    const artifacts: StagedArtifact[] = [];
    for (const name of names) {
      const whitelist = (
        lookup.project.elements.get(name)?.public.bst as { 'overlap-whitelist'?: unknown } | undefined
      )?.['overlap-whitelist'];
      artifacts.push({
        element: name,
        entries: await listing(name),
        whitelist: Array.isArray(whitelist) ? whitelist.filter((glob): glob is string => typeof glob === 'string') : [],
      });
    }
    sessions.push({ location, artifacts });
  }
  const report = stagingWarnings(sessions).find((r) => fatal.includes(r.warning));
  return report ? `${element.file}: [${report.warning}]: ${report.detail}` : undefined;
}

/** The staging warnings an element's project lists in `fatal-warnings` (a cache key input). */
export function fatalStagingWarnings(element: Element): StagingWarning[] {
  const listed = element.project.format2?.fatalWarnings ?? [];
  return STAGING_WARNINGS.filter((warning) => listed.includes(warning));
}
