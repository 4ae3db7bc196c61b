/**
 * How the test hosts name what they create in the kernel. Every name carries the run's id,
 * so concurrent test runs (several engineers on one machine) never collide, and a later run
 * can find what a crashed run left behind from the names alone. Link names must fit the
 * kernel's 15 characters.
 */

/** Six hexadecimal digits; unique among the live runs on the machine. */
export type RunId = string;

const runIdPattern = '[0-9a-f]{6}';

/** The network namespace of one host: `granary-RUNID-HOSTNAME`. */
export function namespaceName(runId: RunId, hostName: string): string {
  return `granary-${runId}-${hostName}`;
}

/** The bridge that joins a run's hosts, in the root namespace: `grbRUNID`. */
export function bridgeName(runId: RunId): string {
  return `grb${runId}`;
}

/** The root-namespace end of host number `index`'s veth pair: `grvRUNIDINDEX`. */
export function vethName(runId: RunId, index: number): string {
  return `grv${runId}${index}`;
}

/** The run id inside a namespace name made by namespaceName(), or undefined for any other name. */
export function runIdOfNamespace(name: string): RunId | undefined {
  return new RegExp(`^granary-(${runIdPattern})-`).exec(name)?.[1];
}

/** The run id inside a link name made by bridgeName() or vethName(), or undefined for any other name. */
export function runIdOfLink(name: string): RunId | undefined {
  return new RegExp(`^gr[bv](${runIdPattern})\\d*$`).exec(name)?.[1];
}

/** Host names are short and safe in paths, namespace names and configuration files. */
export function checkHostName(name: string): void {
  if (!/^[a-z][a-z0-9-]{0,30}$/.test(name)) {
    throw new Error(`host name ${JSON.stringify(name)}: use lower-case letters, digits and '-', 1 to 31 characters`);
  }
}
