/** Parses human sizes such as "10GiB", "512MB", "4096" into bytes. */
const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1000,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1000 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1000 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1000 ** 4,
  tib: 1024 ** 4,
};

/** The bytes of `text`; zero only where `allowZero` says it means something (e.g. "none"). */
export function parseSize(text: string, { allowZero = false } = {}): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  const unit = match ? UNITS[(match[2] ?? '').toLowerCase()] : undefined;
  if (!match || unit === undefined) throw new Error(`invalid size "${text}" (examples: 10GiB, 512MiB, 1000000)`);
  const bytes = Math.floor(Number(match[1]) * unit);
  if (!Number.isSafeInteger(bytes) || bytes < (allowZero ? 0 : 1)) throw new Error(`size "${text}" is out of range`);
  return bytes;
}

export function formatSize(bytes: number): string {
  for (const [unit, factor] of [
    ['TiB', 1024 ** 4],
    ['GiB', 1024 ** 3],
    ['MiB', 1024 ** 2],
    ['KiB', 1024],
  ] as const) {
    if (bytes >= factor) return `${(bytes / factor).toFixed(bytes % factor === 0 ? 0 : 1)}${unit}`;
  }
  return `${bytes}B`;
}
