/**
 * The flags every server command (`granary serve`, `granary storage`) checks
 * first, alike: no positional arguments, --listen, --http-listen and
 * --log-format, which configures logging before anything is logged.
 */
import { configureLogging, type LogFormat, parseLogFormat } from '../observability/log.js';
import { flag, type ParsedArgs, UsageError } from './args.js';
import { validateHttpListen } from './operatorPort.js';

export interface ServerFlags {
  /** HOST:PORT of the gRPC listener. */
  listen: string;
  /** HOST:PORT, auto or none (operatorPort.ts). */
  httpListen: string;
  logFormat: LogFormat;
}

/** Checks the server flags of `args` and configures logging; a bad one is a UsageError. */
export function parseServerFlags(args: ParsedArgs): ServerFlags {
  if (args.positionals.length > 0) throw new UsageError(`unexpected argument ${args.positionals[0]}`);
  const listen = flag(args, 'listen') as string;
  if (!/^.+:\d+$/.test(listen)) throw new UsageError(`--listen must be HOST:PORT, got "${listen}"`);
  const httpListen = flag(args, 'http-listen') as string;
  validateHttpListen(httpListen);
  const logFormat = parseLogFormat(flag(args, 'log-format') as string);
  if (!logFormat) throw new UsageError('--log-format must be text or json');
  configureLogging({ format: logFormat });
  return { listen, httpListen, logFormat };
}
