/**
 * The platform properties Granary's workers offer only when they sandbox actions
 * with bubblewrap, and what to tell someone whose action asks for one of them and
 * finds no worker: to install bubblewrap. (The meta-build client asks for
 * `sandbox=hermetic` for every element, so a farm whose workers lack bubblewrap
 * builds nothing.)
 */
import { WORKER_HINT_PROPERTIES } from './platformMatch.js';
import type { PlatformProperty } from './types.js';

/** What a bubblewrap-sandboxing worker offers besides its own platform (see worker/workerProcess.ts). */
export const SANDBOX_PROPERTIES: readonly PlatformProperty[] = [
  { name: 'sandbox', value: 'host-tools' },
  { name: 'sandbox', value: 'hermetic' },
  // Its sandboxes never give actions the network; `network=on` matches no Granary worker.
  { name: 'network', value: 'off' },
];

/** The remedy, with the Debian package's name. */
export const INSTALL_BUBBLEWRAP =
  'install bubblewrap on the worker (Debian package bubblewrap: apt-get install bubblewrap)';

/**
 * For a refusal of an action with this platform: the sandbox properties it asks for
 * (directly, or through unixUID/unixGID) and how to get a worker that offers them;
 * empty when it asks for none.
 */
export function bubblewrapHint(platform: readonly PlatformProperty[]): string {
  const wanted = platform.map((p) => WORKER_HINT_PROPERTIES.get(p.name) ?? p);
  const sandboxed = SANDBOX_PROPERTIES.filter((s) => wanted.some((p) => p.name === s.name && p.value === s.value));
  if (sandboxed.length === 0) return '';
  const names = [...new Set(sandboxed.map((p) => `${p.name}=${p.value}`))].join(', ');
  return ` (Granary workers offer ${names} only when they sandbox with bubblewrap: ${INSTALL_BUBBLEWRAP})`;
}
