/**
 * The local Cloud Run Admin API for jobs, as the Workflows connectors and `@google-cloud/run` see it:
 * `jobs.run` runs the stage's command from the job definitions as a process with the overrides' args and
 * environment (gs:// URIs mapped to the local bucket) and Cloud Run's CLOUD_RUN_* task variables, streams its
 * logs, retries a failed task `max_retries` times as Cloud Run does; `jobs.executions.get` answers a v2
 * Execution; `jobs.executions.cancel` kills it (no further attempt).
 *
 * The jobs.run connector's documented behaviour is modelled
 * (https://cloud.google.com/workflows/docs/reference/googleapis/run/v2/projects.locations.jobs/run,
 * https://cloud.google.com/workflows/docs/connectors "Long-running operations"): it waits for the execution
 * up to `connector_params.timeout` seconds (default 1800), then raises TimeoutError while the execution runs on;
 * a failed execution raises OperationError; with `connector_params.skip_polling` it answers the long-running
 * operation at once, its metadata the Execution.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { logAt, type Logger } from '../../lib/log.js';
import type { LocalBucket } from '../bucket.js';
import { pythonInterpreter } from '../python.js';
import { WorkflowError } from '../workflows/errors.js';
import type { CallTarget } from '../workflows/interpreter.js';
import type { JobDefinitions, StageJob } from './definitions.js';

export interface LauncherOptions {
  definitions: JobDefinitions;
  /** Cloud Run job id = prefix + stage name (the workflow's JOB_PREFIX). */
  jobPrefix: string;
  /** Where commands run (the repository root: commands name `dist/…` and `jobs/…`). */
  cwd: string;
  bucket: LocalBucket;
  log: Logger;
  /** Called with every execution that starts (the stack lists them; tests check which stages ran). */
  onExecution?: (execution: { job: string; stage: string; name: string }) => void;
}

interface RunJobArgs {
  name?: unknown;
  connector_params?: { timeout?: unknown; skip_polling?: unknown };
  body?: {
    overrides?: {
      containerOverrides?: Array<{ args?: string[]; env?: Array<{ name: string; value?: string }> }>;
      timeout?: string;
    };
  };
}

const JOB_NAME = /^projects\/([^/]+)\/locations\/([^/]+)\/jobs\/([^/]+)$/;
/** The connectors' default wait for a long-running operation (Connectors reference). */
const CONNECTOR_TIMEOUT_SECONDS = 1800;
/** Inherited from the host so commands resolve (node, python3); nothing else of the host leaks in. */
const HOST_VARIABLES = ['PATH', 'HOME', 'LANG', 'TMPDIR', 'NODE_OPTIONS'];

/** The HttpError the connector raises when the Cloud Run API refuses the call. */
export function apiError(code: 400 | 404, message: string): WorkflowError {
  return new WorkflowError({
    message: `HTTP server responded with error code ${code}`,
    code,
    tags: ['HttpError'],
    headers: {},
    body: { error: { code, message, status: code === 404 ? 'NOT_FOUND' : 'INVALID_ARGUMENT' } },
  });
}

interface Attempt {
  exitCode: number | null;
  timedOut: boolean;
  cause: string;
}

/** A v2 Execution as the API answers it (the fields splatflow and its tests read). */
export interface ExecutionResource {
  name: string;
  uid: string;
  job: string;
  createTime: string;
  startTime: string;
  completionTime?: string;
  taskCount: number;
  runningCount: number;
  succeededCount: number;
  failedCount: number;
  cancelledCount: number;
  retriedCount: number;
  conditions: Array<{ type: string; state: string; message?: string }>;
}

/** What each attempt of an execution's one task runs, and where it reports. */
interface Task {
  job: StageJob;
  args: string[];
  env: Record<string, string>;
  timeoutSeconds: number;
  logs: Logger;
  tracked: Tracked;
}

interface Tracked {
  execution: ExecutionResource;
  ended: Promise<void>;
  child?: ChildProcess;
  cancelled: boolean;
  /** Why it failed, once it has. */
  reason?: string;
}

export interface JobsLauncher {
  /** The connectors: jobs.run, jobs.executions.get, jobs.executions.cancel. */
  calls: Record<string, CallTarget>;
  get(name: string): ExecutionResource | undefined;
  /** Kills the execution's task and makes no further attempt; answers the ended execution (undefined: unknown). */
  cancel(name: string): Promise<ExecutionResource | undefined>;
}

export function jobsRunConnector(options: LauncherOptions): Record<string, CallTarget> {
  return createLauncher(options).calls;
}

export function createLauncher(options: LauncherOptions): JobsLauncher {
  const { definitions, jobPrefix, cwd, bucket, log } = options;
  const executions = new Map<string, Tracked>();

  // The job definitions start a Python stage with the image's `python3`; here that is this machine's interpreter.
  const program = (command: string): string => (command === 'python3' ? pythonInterpreter(cwd) : command);

  const runOnce = ({ job, args, env, timeoutSeconds, logs, tracked }: Task) =>
    new Promise<Attempt>((resolve) => {
      const child = spawn(program(job.command[0]!), [...job.command.slice(1), ...args], {
        cwd,
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      tracked.child = child;
      // A stage must not outlive the runtime that started it (Ctrl-C on the stack, a test ending).
      const reap = (): void => {
        child.kill('SIGKILL');
      };
      process.once('exit', reap);
      let cause = '';
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, timeoutSeconds * 1000);
      createInterface({ input: child.stdout }).on('line', (line) => {
        try {
          const entry = JSON.parse(line) as Record<string, unknown>;
          const { message, severity, ...fields } = entry;
          logAt(logs, severity, typeof message === 'string' ? message : line, fields);
        } catch {
          logs.info(line);
        }
      });
      createInterface({ input: child.stderr }).on('line', (line) => {
        if (line.trim()) cause = line.trim();
        logs.warning(line, { stream: 'stderr' });
      });
      child.once('error', (error) => {
        cause = `cannot start ${program(job.command[0]!)}: ${error.message}`;
      });
      child.once('close', (exitCode) => {
        clearTimeout(timer);
        process.removeListener('exit', reap);
        resolve({ exitCode, timedOut, cause });
      });
    });

  const run: CallTarget = async (raw) => {
    const args = raw as RunJobArgs;
    const match = JOB_NAME.exec(String(args.name));
    if (!match) throw apiError(400, `job name ${String(args.name)} is not projects/*/locations/*/jobs/*`);
    const [, project, location, jobId] = match as unknown as [string, string, string, string];
    const stage = jobId.startsWith(jobPrefix) ? jobId.slice(jobPrefix.length) : '';
    const job = definitions.stages[stage];
    if (!job)
      throw apiError(
        404,
        `Resource '${jobId}' of kind 'JOB' in region '${location}' in project '${project}' does not exist.`,
      );

    const overrides = args.body?.overrides ?? {};
    const container = overrides.containerOverrides?.[0] ?? {};
    const env: Record<string, string> = { METADATA_SERVER_DETECTION: 'none' };
    for (const name of HOST_VARIABLES) if (process.env[name] !== undefined) env[name] = process.env[name];
    for (const { name, value } of container.env ?? []) env[name] = bucket.localize(value ?? '');
    const timeoutSeconds = overrides.timeout ? Number.parseFloat(overrides.timeout) : job.timeout_seconds;
    if (!Number.isFinite(timeoutSeconds) || timeoutSeconds <= 0)
      throw apiError(400, `timeout ${overrides.timeout} is invalid`);

    const executionId = `${jobId}-${randomBytes(3).toString('hex')}`;
    // Cloud Run's own job variables (reserved there, so they win over the overrides); one task per execution.
    Object.assign(env, {
      CLOUD_RUN_JOB: jobId,
      CLOUD_RUN_EXECUTION: executionId,
      CLOUD_RUN_TASK_INDEX: '0',
      CLOUD_RUN_TASK_COUNT: '1',
    });
    const name = `projects/${project}/locations/${location}/jobs/${jobId}/executions/${executionId}`;
    const logs = log.child({ stage, execution: executionId });
    options.onExecution?.({ job: jobId, stage, name });
    const createTime = new Date().toISOString();
    logs.info('execution started', { command: job.command, timeout_seconds: timeoutSeconds });
    const execution: ExecutionResource = {
      name,
      uid: randomBytes(16).toString('hex'),
      job: jobId,
      createTime,
      startTime: createTime,
      taskCount: 1,
      runningCount: 1,
      succeededCount: 0,
      failedCount: 0,
      cancelledCount: 0,
      retriedCount: 0,
      conditions: [{ type: 'Completed', state: 'CONDITION_PENDING' }],
    };
    const tracked: Tracked = { execution, ended: Promise.resolve(), cancelled: false };
    executions.set(name, tracked);
    tracked.ended = attempts({ job, args: container.args ?? [], env, timeoutSeconds, logs, tracked }, executionId);
    const operation = () => ({
      name: `projects/${project}/locations/${location}/operations/${randomBytes(8).toString('hex')}`,
      done: execution.completionTime !== undefined,
      metadata: structuredClone(execution),
    });
    if (args.connector_params?.skip_polling === true) return operation();
    const waitSeconds = Number(args.connector_params?.timeout ?? CONNECTOR_TIMEOUT_SECONDS);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      tracked.ended.then(() => false),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), waitSeconds * 1000))),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      // The connector gives up waiting; the execution itself runs on.
      throw new WorkflowError({
        message: `Timed out after ${waitSeconds} s waiting for the operation to complete`,
        tags: ['TimeoutError'],
      });
    }
    if (execution.succeededCount === 1) return structuredClone(execution);
    // The connector's shape for a long-running operation that ended in error.
    throw new WorkflowError({
      message: `Execution ${executionId} failed: ${tracked.reason ?? 'unknown'}`,
      tags: ['OperationError'],
      operation: { ...operation(), error: { code: 2, message: execution.conditions[0]?.message ?? 'failed' } },
    });
  };

  /** Every attempt Cloud Run would make of the one task, then the execution's final state. */
  async function attempts(task: Task, executionId: string): Promise<void> {
    await Promise.resolve();
    const { job, timeoutSeconds, logs, tracked } = task;
    const { execution } = tracked;
    let attempt: Attempt | undefined;
    let retried = 0;
    for (; retried <= job.max_retries && !tracked.cancelled; retried++) {
      attempt = await runOnce({ ...task, env: { ...task.env, CLOUD_RUN_TASK_ATTEMPT: String(retried) } });
      if (attempt.exitCode === 0 || tracked.cancelled) break;
      logs.warning('task attempt failed', { attempt: retried + 1, exit_code: attempt.exitCode, cause: attempt.cause });
    }
    const succeeded = !tracked.cancelled && attempt?.exitCode === 0;
    const reason = tracked.cancelled
      ? 'the execution was cancelled'
      : attempt!.timedOut
        ? `the task timed out after ${timeoutSeconds} s`
        : `the container exited with code ${attempt!.exitCode}${attempt!.cause ? `: ${attempt!.cause.slice(0, 1000)}` : ''}`;
    Object.assign(execution, {
      completionTime: new Date().toISOString(),
      runningCount: 0,
      succeededCount: succeeded ? 1 : 0,
      failedCount: succeeded || tracked.cancelled ? 0 : 1,
      cancelledCount: tracked.cancelled ? 1 : 0,
      retriedCount: Math.min(retried, job.max_retries),
      conditions: [
        {
          type: 'Completed',
          state: succeeded ? 'CONDITION_SUCCEEDED' : 'CONDITION_FAILED',
          ...(succeeded ? {} : { message: `Task ${executionId}-0 failed: ${reason}` }),
        },
      ],
    });
    delete tracked.child;
    if (!succeeded) tracked.reason = reason;
    logs.info(succeeded ? 'execution succeeded' : 'execution failed', { reason: succeeded ? undefined : reason });
  }

  const cancel = async (name: string): Promise<ExecutionResource | undefined> => {
    const tracked = executions.get(name);
    if (!tracked) return undefined;
    if (tracked.execution.completionTime === undefined) {
      tracked.cancelled = true;
      tracked.child?.kill('SIGKILL');
      log.info('execution cancelled', { execution: name });
    }
    await tracked.ended;
    return structuredClone(tracked.execution);
  };

  const known = (raw: Record<string, unknown>): string => {
    const name = String(raw.name);
    if (!executions.has(name)) throw apiError(404, `Resource '${name}' of kind 'EXECUTION' does not exist.`);
    return name;
  };

  return {
    calls: {
      'googleapis.run.v2.projects.locations.jobs.run': run,
      'googleapis.run.v2.projects.locations.jobs.executions.get': (raw) =>
        Promise.resolve().then(() => structuredClone(executions.get(known(raw))!.execution)),
      'googleapis.run.v2.projects.locations.jobs.executions.cancel': async (raw) => (await cancel(known(raw)))!,
    },
    get: (name) => {
      const tracked = executions.get(name);
      return tracked && structuredClone(tracked.execution);
    },
    cancel,
  };
}
