/**
 * Runs one stage under the contract: parse the environment, work in scratch, upload outputs,
 * write the manifest last, and turn any failure into a one-line cause and an exit code.
 */
import type { JSONSchemaType } from 'ajv';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { createLogger, type Logger } from '../../lib/log.js';
import { sha256File } from './checksum.js';
import { mapLimit } from './concurrency.js';
import { parseContract, parseParams, type StageContract } from './contract.js';
import {
  ERROR_RECORD,
  errorRecord,
  readErrorRecord,
  refusedEarlier,
  taskAttempt,
  writeErrorRecord,
  type TaskAttempt,
} from './error-record.js';
import { EXIT_INPUT_REFUSED, exitCodeFor, InputRefused, oneLineCause } from './errors.js';
import { checkManifest, manifestSchema, type FileRecord, type Manifest } from './manifest.js';
import { createProgress } from './progress.js';
import { createLocalStorage } from './storage-local.js';
import { baseName, joinUri, type Storage } from './storage.js';
import type { AnyStage, StageContext } from './stage.js';

export interface RunOptions {
  env: Record<string, string | undefined>;
  storage: Storage;
  /** The stage named on the command line; must agree with SPLATFLOW_STAGE when both are given. */
  stage?: string;
  log?: Logger;
  /** A terminal to draw the progress bar on; JSON progress lines when absent. */
  tty?: { write(text: string): void };
  stderr?: (line: string) => void;
}

const MANIFEST = 'manifest.json';
/** Parallel transfers to and from storage. */
const TRANSFERS = 8;

export function stageFolder(contract: StageContract, stage: string): string {
  return joinUri(contract.requestPrefix, stage) + '/';
}

async function fileRecord(path: string, name: string): Promise<FileRecord> {
  const [info, sha256] = await Promise.all([stat(path), sha256File(path)]);
  return { path: name, size: info.size, sha256 };
}

async function listFiles(dir: string): Promise<string[]> {
  const uris = await createLocalStorage().list(dir + '/');
  return uris.map((uri) => relative(dir, uri));
}

const CONTENT_TYPES: Record<string, string> = {
  // A browser shows the export's viewer page only when it is served as HTML.
  '.html': 'text/html; charset=utf-8',
  '.json': 'application/json',
  '.jpg': 'image/jpeg',
  '.png': 'image/png',
};

function contentType(name: string): string | undefined {
  return CONTENT_TYPES[name.slice(name.lastIndexOf('.'))];
}

/** Answers the process exit code; never throws. */
export async function runStage(registry: readonly AnyStage[], options: RunOptions): Promise<number> {
  const stderr = options.stderr ?? ((line: string) => process.stderr.write(line + '\n'));
  const env = { ...options.env };
  if (options.stage !== undefined) {
    if (env.SPLATFLOW_STAGE && env.SPLATFLOW_STAGE !== options.stage) {
      stderr(`stage ${options.stage} was started with SPLATFLOW_STAGE=${env.SPLATFLOW_STAGE}`);
      return EXIT_INPUT_REFUSED;
    }
    env.SPLATFLOW_STAGE = options.stage;
  }
  let scratch: string | undefined;
  let contract: StageContract | undefined;
  let log = options.log ?? createLogger();
  const task = taskAttempt(env);
  try {
    contract = parseContract(env);
    log = log.child({ stage: contract.stage, request_id: contract.requestId });
    const recordUri = errorRecordUri(contract);
    const earlier = await readErrorRecord(options.storage, recordUri).catch((error: unknown) => {
      log.warning('ignoring an unreadable error record', { uri: recordUri, cause: oneLineCause(error) });
      return undefined;
    });
    if (refusedEarlier(earlier, task)) {
      log.warning('refused by an earlier attempt of this execution; not run again', { attempt: earlier.attempt });
      stderr(`${contract.stage} failed: ${earlier.message}`);
      return EXIT_INPUT_REFUSED;
    }
    // A cause from an earlier attempt must never outlive it: a success or another failure replaces it.
    await options.storage.removePrefix(recordUri);
    const definition = registry.find(({ name }) => name === contract?.stage);
    if (!definition) throw new InputRefused(`stage ${contract.stage} is not implemented by this program`);
    const params: unknown = parseParams(definition.params as JSONSchemaType<unknown>, contract.params);
    scratch = await mkdtemp(join(env.SPLATFLOW_SCRATCH || tmpdir(), `splatflow-${contract.stage}-`));
    const manifest = await execute(definition, contract, params, scratch, { ...options, log });
    log.info('stage finished', { duration_s: manifest.duration_s, outputs: manifest.outputs.length });
    return 0;
  } catch (error) {
    const message = oneLineCause(error);
    const exitCode = exitCodeFor(error);
    if (contract) await recordFailure(options.storage, contract, { exitCode, message }, task, log);
    // Last on stderr: the launcher (and a person reading the logs) takes the last line as the cause.
    stderr(`${env.SPLATFLOW_STAGE ?? 'stage'} failed: ${message}`);
    return exitCode;
  } finally {
    if (scratch) await rm(scratch, { recursive: true, force: true });
  }
}

function errorRecordUri(contract: StageContract): string {
  return joinUri(stageFolder(contract, contract.stage), ERROR_RECORD);
}

/** Best effort: a record that cannot be written is logged, and the stage still fails with its own cause. */
async function recordFailure(
  storage: Storage,
  contract: StageContract,
  failure: { exitCode: number; message: string },
  task: TaskAttempt,
  log: Logger,
): Promise<void> {
  const uri = errorRecordUri(contract);
  const record = errorRecord({ stage: contract.stage, requestId: contract.requestId, ...failure }, task);
  await writeErrorRecord(storage, uri, record).catch((error: unknown) => {
    log.error('cannot write the error record', { uri, cause: oneLineCause(error) });
  });
}

async function execute(
  definition: AnyStage,
  contract: StageContract,
  params: unknown,
  scratch: string,
  options: RunOptions & { log: Logger },
): Promise<Manifest> {
  const { storage, log } = options;
  const started = new Date();
  const tools: Record<string, string> = { node: process.versions.node };
  const timings: Record<string, number> = {};
  const inputs: FileRecord[] = [];
  const outDir = join(scratch, 'out');
  await mkdir(outDir, { recursive: true });
  const progress = createProgress({ log, stage: contract.stage, tty: options.tty });
  const target = stageFolder(contract, contract.stage);

  const timed = async <T>(phase: string, work: () => Promise<T>): Promise<T> => {
    const begin = performance.now();
    try {
      return await work();
    } finally {
      timings[phase] = Number(((performance.now() - begin) / 1000 + (timings[phase] ?? 0)).toFixed(3));
    }
  };

  const fetchManifest = async (stage: string): Promise<Manifest | undefined> => {
    const manifestUri = joinUri(stageFolder(contract, stage), MANIFEST);
    if (!(await storage.exists(manifestUri))) return undefined;
    const path = join(scratch, 'in', stage, MANIFEST);
    await storage.download(manifestUri, path);
    return JSON.parse(await readFile(path, 'utf8')) as Manifest;
  };

  const ctx: StageContext<unknown> = {
    contract,
    params,
    env: options.env,
    storage,
    log,
    progress,
    scratch,
    outDir,
    tool: (name, version) => {
      tools[name] = version;
    },
    timed,
    readStage: (stage, select = () => true) =>
      timed(`read_${stage}`, async () => {
        const folder = stageFolder(contract, stage);
        const manifest = await fetchManifest(stage);
        if (!manifest) throw new InputRefused(`stage ${stage} has not finished: no ${joinUri(folder, MANIFEST)}`);
        const dir = join(scratch, 'in', stage);
        // Only the files the manifest vouches for: leftovers of an interrupted run are ignored.
        const wanted = manifest.outputs.filter((output) => select(output.path));
        const records = await mapLimit(wanted, TRANSFERS, async (output) => {
          const uri = joinUri(folder, output.path);
          await storage.download(uri, join(dir, output.path));
          return { ...output, path: uri };
        });
        inputs.push(...records);
        return { dir, manifest };
      }),
    readManifest: (stage) => timed(`read_${stage}`, () => fetchManifest(stage)),
    fetchInput: (uri, localName) =>
      timed('fetch_input', async () => {
        const path = join(scratch, 'in', localName ?? baseName(uri));
        if (!(await storage.exists(uri))) throw new InputRefused(`input not found: ${uri}`);
        await storage.download(uri, path);
        const record = await fileRecord(path, uri);
        inputs.push(record);
        return { path, record };
      }),
  };

  // A re-run starts by removing this stage's previous outputs, manifest first, so that nothing
  // half-written can be mistaken for a finished run.
  await storage.removePrefix(target);
  const result = await definition.run(ctx);
  Object.assign(timings, result.timings);

  const outputs = await timed('upload', async () => {
    const names = (await listFiles(outDir)).filter((name) => name !== MANIFEST);
    let done = 0;
    return mapLimit(names, TRANSFERS, async (name) => {
      const path = join(outDir, name);
      const record = await fileRecord(path, name);
      await storage.upload(path, joinUri(target, name), contentType(name));
      progress(0.95 + (0.05 * ++done) / names.length, 'upload');
      return record;
    });
  });
  const finished = new Date();
  const manifest: Manifest = {
    schema_version: 1,
    stage: contract.stage,
    request_id: contract.requestId,
    started_at: started.toISOString(),
    finished_at: finished.toISOString(),
    duration_s: Number(((finished.getTime() - started.getTime()) / 1000).toFixed(3)),
    inputs,
    outputs,
    parameters: params as Record<string, unknown>,
    tools,
    timings,
    metrics: result.metrics as Record<string, unknown>,
  };
  checkManifest(manifestSchema(definition.params, definition.metrics), manifest);
  const manifestPath = join(scratch, MANIFEST);
  await writeFile(manifestPath, JSON.stringify(manifest, null, 2) + '\n');
  await storage.upload(manifestPath, joinUri(target, MANIFEST), 'application/json');
  progress(1);
  progress.done();
  return manifest;
}
