/**
 * Structured JSON logs, one object per line on stdout, in the shape Cloud Logging parses
 * (`severity`, `message`, extra fields become `jsonPayload`).
 */

export const SEVERITIES = ['DEBUG', 'INFO', 'WARNING', 'ERROR'] as const;
export type Severity = (typeof SEVERITIES)[number];

export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warning(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  /** A logger whose every entry carries `fields` (for example the request id). */
  child(fields: LogFields): Logger;
}

export type LogSink = (line: string) => void;

const stdoutSink: LogSink = (line) => {
  process.stdout.write(line + '\n');
};

/** Errors do not serialise to JSON on their own; keep what helps a reader. */
function plain(value: unknown): unknown {
  if (value instanceof Error) {
    return { name: value.name, message: value.message, stack: value.stack };
  }
  return value;
}

export function createLogger(options: { level?: Severity; sink?: LogSink; fields?: LogFields } = {}): Logger {
  const minimum = SEVERITIES.indexOf(options.level ?? 'INFO');
  const sink = options.sink ?? stdoutSink;
  const base = options.fields ?? {};

  const write = (severity: Severity, message: string, fields?: LogFields): void => {
    if (SEVERITIES.indexOf(severity) < minimum) return;
    const entry: LogFields = { severity, message, time: new Date().toISOString(), ...base };
    for (const [key, value] of Object.entries(fields ?? {})) entry[key] = plain(value);
    sink(JSON.stringify(entry));
  };

  return {
    debug: (m, f) => write('DEBUG', m, f),
    info: (m, f) => write('INFO', m, f),
    warning: (m, f) => write('WARNING', m, f),
    error: (m, f) => write('ERROR', m, f),
    child: (fields) => createLogger({ ...options, fields: { ...base, ...fields } }),
  };
}

/** Logs at a severity named at run time (a child process's line, a workflow's sys.log); unknown names log as INFO. */
export function logAt(logger: Logger, severity: unknown, message: string, fields?: LogFields): void {
  const level = typeof severity === 'string' ? severity.toUpperCase() : 'INFO';
  if (level === 'DEBUG') logger.debug(message, fields);
  else if (level === 'WARNING') logger.warning(message, fields);
  else if (level === 'ERROR' || level === 'CRITICAL') logger.error(message, fields);
  else logger.info(message, fields);
}
