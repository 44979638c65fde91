/**
 * Runs a reconstruction tool (colmap, glomap) without a shell, streaming its output lines (both
 * streams: COLMAP prints progress on stdout and glog messages on stderr) and failing with the
 * tool's last words, so a crash reads as one line rather than a stack of log output.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

export class ToolError extends Error {
  override name = 'ToolError';
}

const TAIL_LINES = 5;

export function runTool(
  command: string,
  args: readonly string[],
  onLine: (line: string) => void = () => {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const tail: string[] = [];
    const all: string[] = [];
    const reader = () => {
      let partial = '';
      return (chunk: Buffer): void => {
        const lines = (partial + chunk.toString('utf8')).split(/\r?\n|\r/);
        partial = lines.pop() ?? '';
        for (const line of lines) {
          if (line.trim() === '') continue;
          tail.push(line);
          if (tail.length > TAIL_LINES) tail.shift();
          if (all.length < 10_000) all.push(line);
          onLine(line);
        }
      };
    };
    child.stdout.on('data', reader());
    child.stderr.on('data', reader());
    child.once('error', (error: NodeJS.ErrnoException) =>
      reject(error.code === 'ENOENT' ? new ToolError(`${command} is not installed`) : error),
    );
    child.once('close', (code, signal) => {
      if (code === 0) return resolve(all.join('\n'));
      const cause = tail.find((line) => /error|fail|check failed/i.test(line)) ?? tail.at(-1) ?? '';
      const sub = args[0] ?? '';
      reject(new ToolError(`${command} ${sub} exited with ${code ?? signal}${cause ? `: ${cause.trim()}` : ''}`));
    });
  });
}

/** The executable's path when `name` is on PATH, so optional tools (glomap) can be chosen by availability. */
export function findExecutable(name: string, path = process.env['PATH'] ?? ''): string | undefined {
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this folder
    }
  }
  return undefined;
}
