/**
 * The servers named with `npm run bench -- --against [LABEL=]grpc://HOST:PORT[/INSTANCE]`:
 * other REAPI implementations (bazel-remote, Buildbarn, ...) that the
 * side-by-side benchmark measures with the same client, in the same run, as
 * Granary.
 */

export interface AgainstServer {
  /** Column heading in the side-by-side table. */
  label: string;
  /** grpc://HOST:PORT, optionally followed by /INSTANCE_NAME. */
  url: string;
}

const URL_PATTERN = /^grpc:\/\/[^/\s]+:\d+(\/\S*)?$/;

/** Parses one --against value; throws with the expected shape when it is malformed. */
export function parseAgainst(value: string): AgainstServer {
  const separator = value.indexOf('=');
  const hasLabel = separator > 0 && !value.slice(0, separator).includes('/');
  const label = hasLabel ? value.slice(0, separator) : undefined;
  const url = hasLabel ? value.slice(separator + 1) : value;
  if (!URL_PATTERN.test(url)) {
    throw new Error(`--against ${value}: expected [LABEL=]grpc://HOST:PORT[/INSTANCE]`);
  }
  return { label: label ?? url.slice('grpc://'.length), url };
}

/** Parses every --against value and rejects two servers with the same label. */
export function parseAgainstList(values: readonly string[]): AgainstServer[] {
  const servers = values.map(parseAgainst);
  const seen = new Set<string>();
  for (const server of servers) {
    if (seen.has(server.label)) throw new Error(`--against: two servers are labelled "${server.label}"`);
    seen.add(server.label);
  }
  return servers;
}
