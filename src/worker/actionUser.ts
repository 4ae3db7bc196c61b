/**
 * Who actions run as. A worker that runs as root runs them as an unprivileged
 * user (by default nobody, 65534:65534) so that a command cannot use root's
 * power over what it sees; the directories of its input root are handed to that
 * user so it can create its outputs, while the staged input files (hard links
 * into the worker's cache) stay root's and read-only, so an action cannot alter
 * the cache another action will be given. A worker that is not root runs actions
 * as itself.
 */
import { chown, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { ActionUser } from './sandbox.js';

/** nobody:nogroup on Debian and most distributions. */
export const DEFAULT_ACTION_USER: ActionUser = { uid: 65534, gid: 65534 };

/**
 * The user of `--action-user`: `auto` (the default) is DEFAULT_ACTION_USER when
 * the worker is root and nobody else otherwise; `root` keeps root (with a reduced
 * set of capabilities in the sandbox); `UID` or `UID:GID` names one.
 */
export function actionUserFor(setting: string, processUid: number): ActionUser | undefined {
  if (setting === 'auto') return processUid === 0 ? DEFAULT_ACTION_USER : undefined;
  if (setting === 'root') return undefined;
  const match = /^(\d{1,10})(?::(\d{1,10}))?$/.exec(setting);
  const uid = Number(match?.[1]);
  const gid = Number(match?.[2] ?? match?.[1]);
  if (!match || uid > 0xfffffffe || gid > 0xfffffffe || uid === 0) {
    throw new Error(`--action-user must be auto, root, UID or UID:GID with a UID other than 0, got "${setting}"`);
  }
  if (processUid !== 0) throw new Error('--action-user UID needs a worker running as root');
  return { uid, gid };
}

/** Makes `user` the owner of `root` and every directory below it (never following symlinks). */
export async function giveDirectoriesTo(root: string, user: ActionUser): Promise<void> {
  let level = [root];
  while (level.length > 0) {
    await Promise.all(level.map((directory) => chown(directory, user.uid, user.gid)));
    const next: string[] = [];
    for (const directory of level) {
      for (const entry of await readdir(directory, { withFileTypes: true })) {
        if (entry.isDirectory()) next.push(join(directory, entry.name));
      }
    }
    level = next;
  }
}
