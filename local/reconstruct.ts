/**
 * `npm run reconstruct -- VIDEO [--out DIR] [--preset preview] [--view]`: a video (or a .zip of photos) becomes a splat
 * and a mesh on this machine. Starts the local stack, puts the video into the local bucket and submits it through the
 * `trigger` function as a client would, follows the request's status, prints where the outputs are,
 * and stops the stack; with `--view` it then serves the viewer page and prints its URL until Ctrl-C.
 * A FAILED request prints its stage and cause and exits 1; refused arguments exit 2.
 */
import { createReadStream, existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { createLogger } from '../lib/log.js';
import { call } from './json-http.js';
import { outputPaths, runSummary } from './reconstruct/outputs.js';
import { progressReporter, stageLines, type ProgressEntry, type StageEntry } from './reconstruct/progress.js';
import {
  depthModelFromEnv,
  presetWarning,
  requestParams,
  TRAIN_PRESETS,
  type RunChoices,
  type TrainPreset,
} from './reconstruct/params.js';
import { elapsed } from './cli/progress.js';
import { MAPPERS, type Mapper } from '../jobs/sfm/schema.js';
import { startStack } from './stack.js';
import { serveViewer } from './viewer-server.js';

const BUCKET = 'splatflow-local';
const CALLER = 'local-user@localhost';

interface Status {
  request_id: string;
  status: string;
  stage?: string;
  progress?: number;
  stages?: StageEntry[];
  error?: { code?: string; stage?: string; message: string };
  outputs?: { timings?: Record<string, { seconds: number; skipped?: boolean }> };
}

class UsageError extends Error {}

function positiveInteger(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^[1-9]\d*$/.test(value)) throw new UsageError(`--${name} must be a positive integer; got ${value}`);
  return Number(value);
}

function choices(args: string[]): { video: string; out: string; choices: RunChoices; verbose: boolean; view: boolean } {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      out: { type: 'string', default: '.splatflow-local' },
      preset: { type: 'string', default: 'preview' },
      frames: { type: 'string' },
      iterations: { type: 'string' },
      mapper: { type: 'string' },
      verbose: { type: 'boolean', default: false },
      view: { type: 'boolean', default: false },
    },
  });
  if (positionals.length !== 1) {
    throw new UsageError(
      'usage: npm run reconstruct -- VIDEO [--out DIR] [--preset preview|standard|high] [--frames N] [--iterations N] [--mapper global|incremental] [--verbose] [--view]',
    );
  }
  if (!(TRAIN_PRESETS as readonly string[]).includes(values.preset)) {
    throw new UsageError(`--preset must be one of ${TRAIN_PRESETS.join(', ')}; got ${values.preset}`);
  }
  const mapper = values.mapper as Mapper | undefined;
  if (mapper !== undefined && !MAPPERS.includes(mapper)) {
    throw new UsageError(`--mapper must be one of ${MAPPERS.join(', ')}; got ${mapper}`);
  }
  return {
    video: resolve(positionals[0]!),
    out: resolve(values.out),
    verbose: values.verbose,
    view: values.view,
    choices: {
      preset: values.preset as TrainPreset,
      frames: positiveInteger('frames', values.frames),
      iterations: positiveInteger('iterations', values.iterations),
      mapper,
      depthModel: depthModelFromEnv(),
    },
  };
}

const clock = (started: number): string => elapsed(started, Date.now());

async function readJson(path: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(path, 'utf8'));
  } catch {
    return undefined;
  }
}

/** Serves the request's viewer until Ctrl-C (SIGINT) or SIGTERM. */
async function view(folder: string, print: (line: string) => void): Promise<void> {
  const server = await serveViewer(folder);
  print(`viewer: ${server.url} (serving until Ctrl-C)`);
  await new Promise<void>((stop) => {
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await server.close();
}

async function main(args: string[]): Promise<number> {
  const run = choices(args);
  const size = await stat(run.video).then(
    (s) => (s.isFile() ? s.size : undefined),
    () => undefined,
  );
  if (size === undefined) throw new UsageError(`no video file at ${run.video}`);
  const print = (line: string) => process.stdout.write(line + '\n');
  const params = requestParams(run.choices);
  print(`splatflow: reconstructing ${run.video} (${(size / 1e6).toFixed(1)} MB), preset ${run.choices.preset}`);
  if (!run.choices.depthModel) {
    print('depth: skipped — no SPLATFLOW_DEPTH_MODEL_URI configured, so training runs without its depth loss');
  }
  // The device node the NVIDIA driver creates; the train stage then uses gsplat on CUDA.
  const warning = presetWarning(run.choices.preset, existsSync('/dev/nvidiactl'));
  if (warning) print(warning);

  // The stack's own logs (every stage's output) go to stderr with --verbose, else only its warnings,
  // and the stages' progress lines become a line per tenth; the functions it serves read LOG_LEVEL.
  process.env.LOG_LEVEL ??= run.verbose ? 'INFO' : 'WARNING';
  let started = Date.now();
  const showProgress = progressReporter(print);
  const log = createLogger({
    level: 'INFO',
    sink: (line) => {
      if (run.verbose) {
        process.stderr.write(line + '\n');
        return;
      }
      const entry = JSON.parse(line) as ProgressEntry;
      if (entry.severity === 'WARNING' || entry.severity === 'ERROR') process.stderr.write(line + '\n');
      showProgress(entry, clock(started), Date.now());
    },
  });
  const stack = await startStack({ data: run.out, bucket: BUCKET, apiPort: 0, log });
  let viewed: string;
  try {
    const object = `inputs/${Date.now()}/${basename(run.video)}`;
    await stack.bucket.write(BUCKET, object, createReadStream(run.video), 'video/mp4');
    const triggered = await call<{ request_id: string; callback_token: string; error?: { message: string } }>(
      `${stack.urls.functions.trigger}/trigger-reconstruction`,
      {
        method: 'POST',
        headers: { 'x-splatflow-caller': CALLER },
        body: { session_id: 'local', input: { uri: `gs://${BUCKET}/${object}` }, params },
      },
    );
    if (triggered.status !== 202) throw new Error(`trigger refused the request: ${JSON.stringify(triggered.body)}`);
    const { request_id: id, callback_token: token } = triggered.body;
    started = Date.now();
    print(`request ${id} queued; following its status (Ctrl-C stops the stack)`);

    let status: Status = { request_id: id, status: 'QUEUED' };
    const shown = new Set<string>();
    while (!['COMPLETED', 'FAILED', 'CANCELLED'].includes(status.status)) {
      await sleep(1000);
      const answer = await call<Status>(`${stack.urls.functions.status}/status?callback_token=${token}`);
      if (answer.status !== 200)
        throw new Error(`the status function answered ${answer.status}: ${JSON.stringify(answer.body)}`);
      status = answer.body;
      if (status.status === 'FAILED') continue;
      const lines = stageLines(status.stages ?? [], shown);
      if (!status.stages?.length && !shown.has(status.status)) {
        shown.add(status.status);
        lines.push(status.status.toLowerCase());
      }
      for (const line of lines) print(`[${clock(started)}] ${line}`);
    }
    if (status.status !== 'COMPLETED') {
      const stage = status.error?.stage ?? status.stage ?? 'before any stage';
      print(`[${clock(started)}] ${status.status} at ${stage}: ${status.error?.message ?? 'no cause reported'}`);
      return 1;
    }

    const folder = stack.bucket.localize(`gs://${BUCKET}/requests/${id}/`);
    const files = outputPaths(folder);
    const timings = status.outputs?.timings ?? {};
    const manifests: Record<string, unknown> = {};
    for (const stage of Object.keys(timings)) manifests[stage] = await readJson(join(folder, stage, 'manifest.json'));
    print(`[${clock(started)}] COMPLETED`);
    for (const line of runSummary(timings, manifests)) print(line);
    print('outputs:');
    print(`  splat (3DGS .ply): ${files.splat_ply}`);
    print(`  splat (.spz, web): ${files.splat_spz}`);
    print(`  mesh (.ply):       ${files.mesh_ply}`);
    print(`  mesh (.glb):       ${files.mesh_glb}`);
    print(`  report:            ${files.report}`);
    print(`  viewer page:       ${files.viewer}`);
    if (!run.view) print('  (add --view to serve it and open it in a browser)');
    viewed = folder;
  } finally {
    await stack.stop();
  }
  if (run.view) await view(viewed, print);
  return 0;
}

/** The command with its arguments (after the script name); answers the exit code. `splatflow reconstruct` runs it too. */
export async function reconstructCommand(args: string[]): Promise<number> {
  return main(args).catch((error: Error) => {
    process.stderr.write(`splatflow: ${error.message}\n`);
    return error instanceof UsageError ? 2 : 1;
  });
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const code = await reconstructCommand(process.argv.slice(2));
  // The functions served in-process keep Redis reconnect timers after the stack stopped, as `npm run local` does.
  process.exit(code);
}
