/** Entry point of the `granary` command: dispatches to subcommands. */
import { UsageError } from './args.js';
import { provenanceCommand, publishCommand, pushDirCommand } from './assetCommands.js';
import { buildCommand, checkoutCommand, logCommand, showCommand } from './buildCommands.js';
import { configCommand } from './configCommand.js';
import { serveCommand } from './serve.js';
import { storageCommand } from './storage.js';
import { packageVersion } from './version.js';
import { workerCommand } from './worker.js';

const COMMANDS: Record<string, { run: (argv: readonly string[]) => Promise<void>; help: string }> = {
  serve: { run: serveCommand, help: 'run the all-in-one farm (storage, execution, workers)' },
  storage: { run: storageCommand, help: "run a storage node: one share of a farm's CAS" },
  worker: { run: workerCommand, help: 'run a standalone worker for a farm' },
  config: { run: configCommand, help: 'print the effective configuration of serve or worker (config print)' },
  build: { run: buildCommand, help: 'build elements of a BuildStream-format project through the farm' },
  show: { run: showCommand, help: 'show cache keys and states of elements' },
  checkout: { run: checkoutCommand, help: "write an element's artifact to a directory" },
  log: { run: logCommand, help: 'print the build log of an element' },
  publish: { run: publishCommand, help: "publish an element's artifact as a tarball under a URI (Remote Asset)" },
  provenance: { run: provenanceCommand, help: 'print (or --rebuild and check) the provenance of a published URI' },
  'push-dir': { run: pushDirCommand, help: 'upload a directory tree and name it by a URI (Remote Asset)' },
};

function overview(): string {
  const lines = ['usage: granary COMMAND [flags]', '', 'commands:'];
  for (const [name, command] of Object.entries(COMMANDS)) lines.push(`  ${name.padEnd(12)}${command.help}`);
  lines.push('', 'Run `granary COMMAND --help` for the flags of a command, `granary --version` for the version.');
  return lines.join('\n');
}

export async function main(argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === 'help' || name === '-h') {
    console.log(overview());
    return name ? 0 : 2;
  }
  if (name === '--version' || name === 'version') {
    console.log(`granary ${packageVersion() ?? '(version unknown)'}`);
    return 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    console.error(`granary: unknown command "${name}"\n\n${overview()}`);
    return 2;
  }
  try {
    await command.run(rest);
    return 0;
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(`granary ${name}: ${error.message} (see granary ${name} --help)`);
      return 2;
    }
    console.error(`granary ${name}: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  }
}
