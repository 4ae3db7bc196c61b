/**
 * `granary config print [serve|worker] [flags]`: the effective configuration of
 * `granary serve` (or `granary worker`) for the same flags and --config file,
 * as YAML: every setting with its value after the file and the defaults, and
 * serve's storage graphs in full. Printed output is itself a valid --config file
 * that describes the same farm.
 */
import { flag, UsageError } from './args.js';
import { documentOf, formatConfig } from './configFile.js';
import { SERVE_FLAGS } from './serve.js';
import { resolveServeConfiguration, serveDocument } from './serveConfig.js';
import { resolveWorkerArgs, WORKER_SETTINGS } from './worker.js';

const HELP = `usage: granary config print [serve|worker] [flags]

Prints the effective configuration of \`granary serve\` (the default) or of
\`granary worker\` for the same flags (including --config FILE) as YAML.
See docs/configuration.md.`;

export async function configCommand(argv: readonly string[]): Promise<void> {
  const [action, ...rest] = argv;
  if (action === undefined || action === '--help' || action === 'help') {
    console.log(HELP);
    return;
  }
  if (action !== 'print') throw new UsageError(`unknown action "${action}" (expected print)`);
  const [target, ...flags] = rest[0] === 'serve' || rest[0] === 'worker' ? rest : ['serve', ...rest];
  if (target === 'worker') {
    const args = resolveWorkerArgs(flags);
    if (args.positionals.length > 0) throw new UsageError(`unexpected argument ${args.positionals[0]}`);
    process.stdout.write(formatConfig(documentOf(args, WORKER_SETTINGS)));
    return;
  }
  const configuration = resolveServeConfiguration(flags, SERVE_FLAGS);
  if (configuration.args.positionals.length > 0) {
    throw new UsageError(`unexpected argument ${configuration.args.positionals[0]}`);
  }
  if (flag(configuration.args, 'help')) {
    console.log(HELP);
    return;
  }
  process.stdout.write(formatConfig(serveDocument(configuration)));
}
