/** Runs an external tool (ffmpeg, ffprobe…) without a shell and reports failures in one line. */
import { spawn } from 'node:child_process';

export interface ExecResult {
  stdout: Buffer;
  stderr: string;
}

export class ExecError extends Error {
  override name = 'ExecError';
  constructor(
    readonly command: string,
    readonly code: number | null,
    readonly stderr: string,
  ) {
    const last = stderr.trim().split('\n').pop() ?? '';
    super(`${command} exited with ${code ?? 'a signal'}${last ? `: ${last}` : ''}`);
  }
}

/**
 * `onStdout` streams stdout instead of collecting it (ffmpeg piping raw frames); stderr is
 * always collected (bounded) so the cause of a failure can be quoted.
 */
export function exec(
  command: string,
  args: readonly string[],
  options: { onStdout?: (chunk: Buffer) => void; onStderrLine?: (line: string) => void } = {},
): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    let partial = '';
    child.stdout.on('data', (chunk: Buffer) => (options.onStdout ? options.onStdout(chunk) : out.push(chunk)));
    child.stderr.on('data', (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      if (options.onStderrLine) {
        const lines = (partial + text).split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines) options.onStderrLine(line);
      }
      err = (err + text).slice(-8192);
    });
    child.once('error', (error: NodeJS.ErrnoException) =>
      reject(error.code === 'ENOENT' ? new Error(`${command} is not installed`) : error),
    );
    child.once('close', (code) => {
      if (partial && options.onStderrLine) options.onStderrLine(partial);
      if (code === 0) resolve({ stdout: Buffer.concat(out), stderr: err });
      else reject(new ExecError(command, code, err));
    });
  });
}
