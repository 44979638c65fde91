/**
 * `error.json`: why a stage failed, written beside its outputs when it fails. The workflow reads it
 * because Cloud Run reports only "the container exited with an error", never the stage's stderr. The
 * Python runtime (jobs/runtime_py/stage.py) writes the same record with the same field names.
 */
import { Ajv, type JSONSchemaType } from 'ajv';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EXIT_FAILED, EXIT_INPUT_REFUSED } from './errors.js';
import type { Storage } from './storage.js';

export const ERROR_RECORD = 'error.json';

export interface ErrorRecord {
  schema_version: 1;
  stage: string;
  request_id: string;
  exit_code: typeof EXIT_FAILED | typeof EXIT_INPUT_REFUSED;
  /** exit_code 2: the input, parameters or configuration were refused; a retry cannot help. */
  refused: boolean;
  /** The one-line cause, without the stage's name in front. */
  message: string;
  /** Cloud Run's CLOUD_RUN_EXECUTION; null outside a Cloud Run task. */
  execution: string | null;
  /** Cloud Run's CLOUD_RUN_TASK_ATTEMPT: 0 for the first attempt of the task. */
  attempt: number;
  at: string;
}

export const errorRecordSchema: JSONSchemaType<ErrorRecord> = {
  type: 'object',
  properties: {
    schema_version: { type: 'integer', const: 1 },
    stage: { type: 'string', minLength: 1 },
    request_id: { type: 'string', minLength: 1 },
    exit_code: { type: 'integer', enum: [EXIT_FAILED, EXIT_INPUT_REFUSED] },
    refused: { type: 'boolean' },
    message: { type: 'string', minLength: 1 },
    // ajv's types cannot say "required, but may be null"; the schema itself is plain JSON Schema.
    execution: { type: ['string', 'null'] } as never,
    attempt: { type: 'integer', minimum: 0 },
    at: { type: 'string', minLength: 20 },
  },
  required: ['schema_version', 'stage', 'request_id', 'exit_code', 'refused', 'message', 'execution', 'attempt', 'at'],
  additionalProperties: false,
};

const validate = new Ajv({ allErrors: true }).compile(errorRecordSchema);

export function checkErrorRecord(value: unknown): ErrorRecord {
  if (validate(value)) return value;
  const problems = (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message}`);
  throw new Error(`error record does not match its schema: ${problems.join('; ')}`);
}

/** Which Cloud Run task attempt this process is, from the variables Cloud Run (and the local launcher) set. */
export interface TaskAttempt {
  execution: string | null;
  attempt: number;
}

export function taskAttempt(env: Record<string, string | undefined>): TaskAttempt {
  return { execution: env.CLOUD_RUN_EXECUTION || null, attempt: Number(env.CLOUD_RUN_TASK_ATTEMPT) || 0 };
}

export function errorRecord(
  failure: { stage: string; requestId: string; exitCode: number; message: string },
  task: TaskAttempt,
  at = new Date(),
): ErrorRecord {
  const refused = failure.exitCode === EXIT_INPUT_REFUSED;
  return {
    schema_version: 1,
    stage: failure.stage,
    request_id: failure.requestId,
    exit_code: refused ? EXIT_INPUT_REFUSED : EXIT_FAILED,
    refused,
    message: failure.message,
    execution: task.execution,
    attempt: task.attempt,
    at: at.toISOString(),
  };
}

/**
 * Cloud Run retries a failed task whatever its exit code; a refusal is deterministic, so a retry of
 * the same execution answers the earlier refusal instead of redoing the work. Another execution (the
 * request retried, perhaps with other inputs) runs normally.
 */
export function refusedEarlier(record: ErrorRecord | undefined, task: TaskAttempt): record is ErrorRecord {
  return (
    record !== undefined &&
    record.refused &&
    task.attempt > 0 &&
    task.execution !== null &&
    record.execution === task.execution
  );
}

/** Storage moves files, not bytes: the record goes through a private temporary folder. */
async function throughTemporary<T>(work: (path: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'splatflow-error-'));
  try {
    return await work(join(dir, ERROR_RECORD));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The record at `uri`, or undefined when there is none. Throws when it is unreadable or malformed. */
export async function readErrorRecord(storage: Storage, uri: string): Promise<ErrorRecord | undefined> {
  if (!(await storage.exists(uri))) return undefined;
  return throughTemporary(async (path) => {
    await storage.download(uri, path);
    return checkErrorRecord(JSON.parse(await readFile(path, 'utf8')));
  });
}

/** As JSON, so the workflow's storage connector (alt=media) answers it parsed. */
export async function writeErrorRecord(storage: Storage, uri: string, record: ErrorRecord): Promise<void> {
  await throughTemporary(async (path) => {
    await writeFile(path, JSON.stringify(record, null, 2) + '\n');
    await storage.upload(path, uri, 'application/json');
  });
}
