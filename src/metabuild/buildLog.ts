/**
 * Build logs as people read them (`granary log`, failure reports). A build
 * script writes marker lines naming each command before it runs it (see
 * stepMarkerLine in buildAction.ts) into one stream with the commands' output;
 * here the markers become headings with the whole command, and an element that
 * ran nothing (an import, a stack) points to the logs of what it depends on.
 */
import { backgroundContext } from '../context/requestContext.js';
import type { Digest } from '../digest/digest.js';
import { type BlobStore, getBuffer } from '../storage/blobStore.js';
import type { Artifact } from './artifactStore.js';
import { STEP_CONTINUATION, STEP_MARKER } from './buildAction.js';
import type { PlannedElement } from './builder.js';

/** A command the log says was started: its label ("build-commands 2/3") and its whole text. */
export interface LogStep {
  label: string;
  command: string;
}

/** True for the lines the build script writes about its commands, as opposed to their output. */
export function isMarkerLine(line: string): boolean {
  return line.startsWith(STEP_MARKER) || line.startsWith(STEP_CONTINUATION);
}

/** The last command the log started (the failing one, when the build failed). */
export function lastStep(log: string): LogStep | undefined {
  const lines = log.split('\n');
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i] as string;
    if (!line.startsWith(STEP_MARKER)) continue;
    const text = line.slice(STEP_MARKER.length);
    const colon = text.indexOf(': ');
    const rest: string[] = [];
    for (let j = i + 1; j < lines.length && (lines[j] as string).startsWith(STEP_CONTINUATION); j++) {
      rest.push((lines[j] as string).slice(STEP_CONTINUATION.length));
    }
    const label = colon < 0 ? text : text.slice(0, colon);
    const first = colon < 0 ? '' : text.slice(colon + 2);
    return { label, command: [first, ...rest].join('\n') };
  }
  return undefined;
}

/**
 * The log with each marker turned into a heading: `== LABEL`, then the command as a
 * shell shows it (`$ ` before its first line, `> ` before the others).
 */
export function renderLog(log: string): string {
  return log
    .split('\n')
    .map((line) => {
      if (line.startsWith(STEP_CONTINUATION)) return `> ${line.slice(STEP_CONTINUATION.length)}`;
      if (!line.startsWith(STEP_MARKER)) return line;
      const text = line.slice(STEP_MARKER.length);
      const colon = text.indexOf(': ');
      return colon < 0 ? `== ${text}` : `== ${text.slice(0, colon)}\n$ ${text.slice(colon + 2)}`;
    })
    .join('\n');
}

async function readText(cas: BlobStore, digest: Digest | undefined): Promise<string> {
  if (!digest || digest.sizeBytes === 0) return '';
  const data = await getBuffer(backgroundContext(), cas, digest);
  return data ? data.toString('utf8') : '';
}

/**
 * The log of an artifact for people, or undefined when its element ran no command.
 * Artifacts built before the build scripts joined the two streams have their output
 * and their errors apart: those are shown one after the other, each under a heading.
 */
export async function artifactLog(cas: BlobStore, artifact: Artifact): Promise<string | undefined> {
  const [stdout, stderr] = [await readText(cas, artifact.stdout), await readText(cas, artifact.stderr)];
  if (!artifact.actionDigest && stdout === '' && stderr === '') return undefined;
  if (stdout !== '' && stderr !== '') {
    return (
      '(built before Granary kept one log in order: the standard output, then the standard error)\n' +
      `--- standard output ---\n${renderLog(stdout)}${stdout.endsWith('\n') ? '' : '\n'}` +
      `--- standard error ---\n${renderLog(stderr)}`
    );
  }
  return renderLog(stdout + stderr);
}

/**
 * What `granary log ELEMENT` prints, given the element's plan (its dependencies first,
 * the element last, all built): the element's log, or, for an element that ran
 * nothing (an import, a stack, a compose without integration commands), a line
 * saying so followed by the log of each element it depends on, in build order, each
 * under its name.
 */
export async function elementLogReport(cas: BlobStore, plan: readonly PlannedElement[]): Promise<string> {
  const target = plan.at(-1);
  if (!target?.artifact) throw new Error(`${target?.element.name ?? 'the element'} is not built; no log`);
  const own = await artifactLog(cas, target.artifact);
  if (own !== undefined) return own;
  const { name, kind } = target.element;
  const sections: string[] = [];
  for (const planned of plan.slice(0, -1)) {
    const log = planned.artifact && (await artifactLog(cas, planned.artifact));
    if (log !== undefined) sections.push(`=== ${planned.element.name} ===\n${log}${log.endsWith('\n') ? '' : '\n'}`);
  }
  const ranNothing = `granary: ${name} (kind ${kind}) ran no commands`;
  if (sections.length === 0) return `${ranNothing}, nor did any element it depends on\n`;
  return `${ranNothing}; the logs of the elements it depends on follow\n${sections.join('')}`;
}
