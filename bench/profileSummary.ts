/**
 * `node dist-test/bench/profileSummary.js FILE.cpuprofile [--top N] [--by samples|time]`: prints
 * where a server's CPU time went (see cpuProfile.ts), for profiles written by
 * `npm run bench -- --profile-server` or any `node --cpu-prof` run.
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { type CpuProfile, type Share, summariseProfile } from './cpuProfile.js';

function printShares(title: string, shares: Share[]): void {
  console.log(`\n${title}`);
  for (const share of shares) {
    console.log(`  ${(share.fraction * 100).toFixed(1).padStart(5)}%  ${share.name}`);
  }
}

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { top: { type: 'string' }, by: { type: 'string', default: 'samples' } },
  });
  if (positionals.length !== 1) {
    console.error('usage: node dist-test/bench/profileSummary.js FILE.cpuprofile [--top N] [--by samples|time]');
    return 2;
  }
  if (values.by !== 'samples' && values.by !== 'time') {
    console.error(`--by must be samples or time, got "${values.by}"`);
    return 2;
  }
  const profile = JSON.parse(await readFile(positionals[0] as string, 'utf8')) as CpuProfile;
  const summary = summariseProfile(profile, Number(values.top ?? 25), values.by);
  const total =
    values.by === 'samples' ? `${summary.totalWeight} samples` : `${(summary.totalWeight / 1e6).toFixed(1)} s`;
  console.log(`${positionals[0]}: ${total}, weighted by ${values.by}`);
  printShares('By kind of work (self time)', summary.categories);
  printShares('Functions by self time', summary.selfTime);
  printShares('Functions by total time (on the stack)', summary.totalTime);
  return 0;
}

process.exitCode = await main();
