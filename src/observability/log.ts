/**
 * The one logger of Granary's long-running commands (`granary serve`, `granary
 * worker`), used instead of console.log so that an operator chooses the shape of
 * every line: `text` for people (`granary: message key=value ...`, as the commands
 * always printed) or `json` for log collectors (one object per line with time,
 * level, component, message and the fields). Structured events (a finished action,
 * a worker joining or leaving, an eviction round) carry an `event` field so they
 * can be picked out of either format.
 */

export type LogFormat = 'text' | 'json';
export type LogLevel = 'info' | 'warn' | 'error';

/** A field value: what a log collector can index without guessing. */
export type LogValue = string | number | boolean | null | undefined | readonly string[];
export type LogFields = Readonly<Record<string, LogValue>>;

/** Where lines go; a test passes its own to read them back. */
export interface LogSink {
  write(line: string): void;
}

/** How one line is written. */
export interface LineOptions {
  /** Print the fields in text too (default); false when the message already says what they hold. */
  readonly fieldsInText?: boolean;
}

export interface Logger {
  info(message: string, fields?: LogFields, options?: LineOptions): void;
  warn(message: string, fields?: LogFields, options?: LineOptions): void;
  error(message: string, fields?: LogFields, options?: LineOptions): void;
  /** The same logger under another component name (the text prefix, e.g. `granary worker`). */
  component(name: string): Logger;
}

export const LOG_FORMATS: readonly LogFormat[] = ['text', 'json'];

interface Settings {
  format: LogFormat;
  sink: LogSink;
  now: () => Date;
}

const settings: Settings = {
  format: 'text',
  sink: { write: (line) => process.stdout.write(line) },
  now: () => new Date(),
};

/**
 * Sets the format (and optionally the sink and clock) of every logger in the
 * process; the commands call it once after parsing --log-format.
 */
export function configureLogging(options: { format?: LogFormat; sink?: LogSink; now?: () => Date }): void {
  if (options.format) settings.format = options.format;
  if (options.sink) settings.sink = options.sink;
  if (options.now) settings.now = options.now;
}

/** Parses a --log-format value; undefined when it is neither text nor json. */
export function parseLogFormat(text: string): LogFormat | undefined {
  return (LOG_FORMATS as readonly string[]).includes(text) ? (text as LogFormat) : undefined;
}

/** A logger for one component; `granary` is the server's, `granary worker` a worker's. */
export function createLogger(componentName = 'granary'): Logger {
  const emit = (level: LogLevel, message: string, fields: LogFields = {}, options: LineOptions = {}) => {
    const shown = settings.format === 'text' && options.fieldsInText === false ? {} : fields;
    settings.sink.write(`${formatLine(settings.format, componentName, level, message, shown, settings.now())}\n`);
  };
  return {
    info: (message, fields, options) => emit('info', message, fields, options),
    warn: (message, fields, options) => emit('warn', message, fields, options),
    error: (message, fields, options) => emit('error', message, fields, options),
    component: (name) => createLogger(name),
  };
}

/** The server's logger. */
export const log: Logger = createLogger('granary');

/** One line, without its newline. Exported for tests. */
export function formatLine(
  format: LogFormat,
  component: string,
  level: LogLevel,
  message: string,
  fields: LogFields,
  time: Date,
): string {
  if (format === 'json') {
    const record: Record<string, unknown> = { time: time.toISOString(), level, component, message };
    for (const [key, value] of Object.entries(fields)) {
      if (value !== undefined && !(key in record)) record[key] = value;
    }
    return JSON.stringify(record);
  }
  const prefix = level === 'info' ? `${component}: ` : `${component}: ${level.toUpperCase()}: `;
  const parts = [`${prefix}${message}`];
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined || key === 'event') continue;
    parts.push(`${key}=${textValue(value)}`);
  }
  return parts.join(' ');
}

function textValue(value: Exclude<LogValue, undefined>): string {
  if (Array.isArray(value)) return quoteIfNeeded(value.join(','));
  return quoteIfNeeded(String(value));
}

/** Values with spaces, quotes or nothing in them are quoted so a line splits back into its fields. */
function quoteIfNeeded(text: string): string {
  return text === '' || /[\s"]/.test(text) ? JSON.stringify(text) : text;
}

/** The message of anything thrown, for a log field. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
