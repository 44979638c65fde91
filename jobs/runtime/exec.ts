/** Runs an external tool (ffmpeg, ffprobe, colmap…) without a shell and reports failures in one line. */
import { spawn } from 'node:child_process';

export interface ExecResult {
  stdout: Buffer;
  stderr: string;
}

/** How many of the last stderr lines are searched for the one that names the failure. */
const CAUSE_LINES = 5;

/**
 * A tool's last words are often a stack trace or a summary (glog prints "Check failed: …" then
 * "*** Check failure stack trace ***"), so the cause is the last of its final lines that speaks
 * of an error or failure, else its very last line.
 */
function failureCause(stderr: string): string {
  const tail = stderr
    .split(/\r?\n|\r/)
    .map((line) => line.trim())
    .filter((line) => line !== '')
    .slice(-CAUSE_LINES);
  return tail.findLast((line) => /error|fail/i.test(line)) ?? tail.at(-1) ?? '';
}

export class ExecError extends Error {
  override name = 'ExecError';
  constructor(
    readonly command: string,
    readonly code: number | null,
    readonly stderr: string,
  ) {
    const cause = failureCause(stderr);
    super(`${command} exited with ${code ?? 'a signal'}${cause ? `: ${cause}` : ''}`);
  }
}

/** Calls `onLine` with each complete line of a stream (`\n`, `\r\n` or a progress `\r`). */
function lineSplitter(onLine: (line: string) => void): { push(text: string): void; end(): void } {
  let partial = '';
  return {
    push(text) {
      const lines = (partial + text).split(/\r?\n|\r/);
      partial = lines.pop() ?? '';
      for (const line of lines) onLine(line);
    },
    end() {
      if (partial) onLine(partial);
      partial = '';
    },
  };
}

/**
 * `onStdout` streams stdout instead of collecting it (ffmpeg piping raw frames); stderr is
 * always collected (bounded) so the cause of a failure can be quoted. `onStderrLine` sees
 * stderr's lines, `onStdoutLine` stdout's (COLMAP prints its progress counters there).
 */
export function exec(
  command: string,
  args: readonly string[],
  options: {
    onStdout?: (chunk: Buffer) => void;
    onStdoutLine?: (line: string) => void;
    onStderrLine?: (line: string) => void;
  } = {},
): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    const stdoutLines = options.onStdoutLine && lineSplitter(options.onStdoutLine);
    const stderrLines = options.onStderrLine && lineSplitter(options.onStderrLine);
    child.stdout.on('data', (chunk: Buffer) => {
      if (options.onStdout) options.onStdout(chunk);
      else out.push(chunk);
      stdoutLines?.push(chunk.toString('utf8'));
    });
    child.stderr.on('data', (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      stderrLines?.push(text);
      err = (err + text).slice(-8192);
    });
    child.once('error', (error: NodeJS.ErrnoException) =>
      reject(error.code === 'ENOENT' ? new Error(`${command} is not installed`) : error),
    );
    child.once('close', (code) => {
      stdoutLines?.end();
      stderrLines?.end();
      if (code === 0) resolve({ stdout: Buffer.concat(out), stderr: err });
      else reject(new ExecError(command, code, err));
    });
  });
}
