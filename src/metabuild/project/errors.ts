/**
 * Error type for everything wrong with a project's files.
 *
 * Every problem a user can fix in project.conf or an element file is reported
 * as a ProjectError whose message starts with "FILE line N: ", FILE being the
 * path relative to the project directory, so a CLI can print it verbatim and
 * an editor can jump to it. Keeping the location as fields too lets callers
 * (and tests) check it without parsing the message.
 */

/** Where a value was written: a project-relative file name and a 1-based line. */
export interface Loc {
  readonly file: string;
  readonly line: number;
}

export function formatLoc(loc: Loc): string {
  return `${loc.file} line ${loc.line}`;
}

export class ProjectError extends Error {
  override name = 'ProjectError';
  readonly file: string | undefined;
  readonly line: number | undefined;

  /** With a location the message becomes "FILE line N: detail"; without one it is just the detail. */
  constructor(loc: Loc | undefined, detail: string) {
    super(loc ? `${formatLoc(loc)}: ${detail}` : detail);
    this.file = loc?.file;
    this.line = loc?.line;
  }
}
