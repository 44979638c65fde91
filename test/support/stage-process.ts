/** Runs a stage the way the launcher and Cloud Run do: the real entry point in a child process. */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { Manifest } from '../../jobs/runtime/manifest.js';

const ENTRY = fileURLToPath(new URL('../../jobs/run-stage.js', import.meta.url));

export interface StageRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface StageEnv {
  requestId?: string;
  input: string;
  prefix: string;
  params?: Record<string, unknown>;
  /** Extra variables, for example STORAGE_EMULATOR_HOST. */
  env?: Record<string, string>;
}

export function runStageProcess(stage: string, options: StageEnv, timeoutMs = 120_000): Promise<StageRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [ENTRY, stage], {
      env: {
        PATH: process.env.PATH,
        METADATA_SERVER_DETECTION: 'none',
        SPLATFLOW_STAGE: stage,
        SPLATFLOW_REQUEST_ID: options.requestId ?? 'req-1',
        SPLATFLOW_INPUT_URI: options.input,
        SPLATFLOW_REQUEST_PREFIX: options.prefix,
        SPLATFLOW_PARAMS: JSON.stringify(options.params ?? {}),
        ...options.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: timeoutMs,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

export async function readManifest(path: string): Promise<Manifest> {
  return JSON.parse(await readFile(path, 'utf8')) as Manifest;
}

/** The progress fractions a run reported on stdout, in order. */
export function progressOf(stdout: string): number[] {
  return stdout
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { message?: string; progress?: number })
    .filter((entry) => entry.message === 'progress')
    .map((entry) => entry.progress ?? NaN);
}
