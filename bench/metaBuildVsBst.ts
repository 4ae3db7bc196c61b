/**
 * `npm run bench:metabuild`: Granary's meta-build client against BuildStream
 * 2.8.1 on the same farm. Each round starts a fresh `granary serve` (its
 * embedded bubblewrap worker is the only worker), builds examples/hello-bst2
 * from scratch with `granary build --remote`, stops it, starts another fresh
 * one and builds the same project with `bst build` configured for remote
 * execution against it (run inside the Debian sid root, with an empty local
 * cache). Both start with nothing cached anywhere, so each pays for getting
 * the sysroot to the farm. Prints the wall times, Granary's per-step timings
 * (`--timings`) and BuildStream's per-element activity times from its log.
 * Not part of the tests.
 *
 * Flags: --rounds N (default 1), --keep (keep the scratch directory).
 */
import { spawn } from 'node:child_process';
import { cpSync, linkSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startGranary } from '../test/support/granaryProcess.js';
import { GRANARY_BIN, REPO_ROOT } from '../test/support/repository.js';
import { removeQuietly, scratchDirectory } from '../test/support/scratch.js';
import { inSidrootAsync, prepareSidroot } from '../test/support/sidroot.js';
import { makeSysroot } from '../test/support/sysroot.js';

const TARGET = 'image.bst';

interface Timed {
  seconds: number;
  output: string;
  status: number | null;
}

function timed(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<Timed> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.on('close', (status) => resolve({ seconds: (Date.now() - started) / 1000, output, status }));
  });
}

async function freshFarm(directory: string) {
  const server = await startGranary([
    'serve',
    '--listen',
    '127.0.0.1:0',
    '--data',
    directory,
    '--max-size',
    '8GiB',
    '--workers',
    '2',
    '--sandbox',
    'bubblewrap',
  ]);
  const deadline = Date.now() + 30_000;
  while (!/granary worker: connected/.test(server.output())) {
    if (Date.now() > deadline) throw new Error(`the embedded worker did not connect:\n${server.output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return server;
}

/**
 * The timed activities of a bst run (fetching, staging, uploading the input
 * root, waiting for the farm, ...) and their durations, from BuildStream 2's
 * element logs (fetch and build logs, in the order they were written).
 */
function bstActivities(logdir: string): string[] {
  const logs: string[] = [];
  const walk = (directory: string) => {
    for (const entry of readdirSync(directory, { withFileTypes: true })) {
      const path = join(directory, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.log') && /-(fetch|build)\./.test(entry.name)) logs.push(path);
    }
  };
  walk(logdir);
  // Log names end with the time they were started: <key>-<action>.<yyyymmdd-hhmmss>.log
  const started = (path: string) => /\.(\d{8}-\d{6})\.log$/.exec(path)?.[1] ?? '';
  logs.sort((a, b) => (started(a) < started(b) ? -1 : started(a) > started(b) ? 1 : 0));
  const lines: string[] = [];
  for (const path of logs) {
    for (const line of readFileSync(path, 'utf8').split('\n')) {
      const match = /^\[(\d\d:\d\d:\d\d)\] SUCCESS (?:\[[0-9a-f]+\] )?(\S+): (.+)$/.exec(line);
      if (match) lines.push(`  ${match[2]!.padEnd(14)} ${match[1]} ${match[3]}`);
    }
  }
  return lines;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: { rounds: { type: 'string', default: '1' }, keep: { type: 'boolean', default: false } },
  });
  const sid = prepareSidroot();
  if (sid.skip || sid.error) {
    console.error(`the sid root is unavailable: ${sid.skip || sid.error}`);
    return 2;
  }
  const sysroot = makeSysroot();
  const scratch = scratchDirectory('bench-metabuild');
  try {
    const mirror = join(scratch, 'mirror');
    mkdirSync(mirror);
    linkSync(sysroot.path, join(mirror, 'sysroot.tar'));
    const project = (into: string) => {
      cpSync(join(REPO_ROOT, 'examples', 'hello-bst2'), into, { recursive: true });
      for (const [file, from, to] of [
        ['project.conf', 'SYSROOT_DIRECTORY', mirror.replace(/^\/+/, '')],
        ['elements/base.bst', 'SYSROOT_SHA256', sysroot.sha256],
      ] as const) {
        writeFileSync(join(into, file), readFileSync(join(into, file), 'utf8').replace(from, to));
      }
      return into;
    };
    for (let round = 1; round <= Number(values.rounds); round++) {
      const here = join(scratch, `round-${round}`);
      mkdirSync(here);

      let server = await freshFarm(join(here, 'farm-granary'));
      const granaryEnv = {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: join(here, 'home'),
        XDG_CACHE_HOME: join(here, 'granary-cache'),
        XDG_CONFIG_HOME: join(here, 'granary-config'),
      };
      const ours = await timed(
        process.execPath,
        [
          GRANARY_BIN,
          'build',
          '--remote',
          server.url,
          '--timings',
          '--project',
          project(join(here, 'granary-project')),
          TARGET,
        ],
        granaryEnv,
      );
      await server.stop();
      if (ours.status !== 0) throw new Error(`granary build failed:\n${ours.output}`);

      server = await freshFarm(join(here, 'farm-bst'));
      const remote = `http://${server.address}`;
      const config = join(here, 'buildstream.conf');
      writeFileSync(
        config,
        [
          `cachedir: ${join(here, 'bst-cache')}`,
          `logdir: ${join(here, 'bst-logs')}`,
          'scheduler:',
          '  on-error: quit',
          'remote-execution:',
          ...['execution-service', 'storage-service', 'action-cache-service'].flatMap((s) => [
            `  ${s}:`,
            `    url: ${remote}`,
          ]),
          '',
        ].join('\n'),
      );
      const bstProject = project(join(here, 'bst-project'));
      const started = Date.now();
      const theirs = await inSidrootAsync(sid.root, ['bst', '--no-colors', '--config', config, 'build', TARGET], {
        binds: [scratch],
        cwd: bstProject,
        env: { HOME: here },
        timeoutMs: 30 * 60_000,
      });
      const bstSeconds = (Date.now() - started) / 1000;
      await server.stop();
      if (theirs.status !== 0) throw new Error(`bst build failed:\n${theirs.output.split('\n').slice(-40).join('\n')}`);

      console.log(`round ${round}: ${TARGET} of examples/hello-bst2, each on a fresh granary serve`);
      console.log(
        `  ${cpus().length} CPUs, load average ${loadavg()
          .map((load) => load.toFixed(1))
          .join(' ')} (1, 5, 15 min) at the end`,
      );
      console.log(`  granary build --remote: ${ours.seconds.toFixed(1)} s`);
      console.log(`  bst build (remote execution): ${bstSeconds.toFixed(1)} s`);
      console.log('granary --timings (seconds per step):');
      for (const line of ours.output
        .split('\n')
        .filter((l) => /^(granary: loading|element |\S+\.bst |\(total\))/.test(l))) {
        console.log(`  ${line}`);
      }
      console.log('bst activities (duration, from its build logs):');
      for (const line of bstActivities(join(here, 'bst-logs'))) console.log(line);
    }
    return 0;
  } finally {
    if (!values.keep) removeQuietly(scratch);
    else console.log(`kept ${scratch}`);
  }
}

process.exitCode = await main();
