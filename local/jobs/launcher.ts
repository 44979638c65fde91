/**
 * The local `googleapis.run.v2.projects.locations.jobs.run` connector: runs the stage's command from
 * the job definitions as a process with the overrides' args and environment (gs:// URIs mapped to the
 * local bucket) and Cloud Run's CLOUD_RUN_* task variables, streams its logs, retries a failed task
 * `max_retries` times as Cloud Run does, and answers a v2 Execution, or raises the connector's
 * OperationError when the execution fails.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { logAt, type Logger } from '../../lib/log.js';
import type { LocalBucket } from '../bucket.js';
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
  body?: {
    overrides?: {
      containerOverrides?: Array<{ args?: string[]; env?: Array<{ name: string; value?: string }> }>;
      timeout?: string;
    };
  };
}

const JOB_NAME = /^projects\/([^/]+)\/locations\/([^/]+)\/jobs\/([^/]+)$/;
/** Inherited from the host so commands resolve (node, python3); nothing else of the host leaks in. */
const HOST_VARIABLES = ['PATH', 'HOME', 'LANG', 'TMPDIR', 'NODE_OPTIONS'];

/** The HttpError the connector raises when the Cloud Run API refuses the call. */
function apiError(code: 400 | 404, message: string): WorkflowError {
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

export function jobsRunConnector(options: LauncherOptions): Record<string, CallTarget> {
  const { definitions, jobPrefix, cwd, bucket, log } = options;

  const runOnce = (job: StageJob, args: string[], env: Record<string, string>, timeoutSeconds: number, logs: Logger) =>
    new Promise<Attempt>((resolve) => {
      const child = spawn(job.command[0]!, [...job.command.slice(1), ...args], {
        cwd,
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
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
        cause = `cannot start ${job.command[0]}: ${error.message}`;
      });
      child.once('close', (exitCode) => {
        clearTimeout(timer);
        process.removeListener('exit', reap);
        resolve({ exitCode, timedOut, cause });
      });
    });

  return {
    'googleapis.run.v2.projects.locations.jobs.run': async (raw) => {
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

      let attempt: Attempt | undefined;
      let retried = 0;
      for (; retried <= job.max_retries; retried++) {
        attempt = await runOnce(
          job,
          container.args ?? [],
          { ...env, CLOUD_RUN_TASK_ATTEMPT: String(retried) },
          timeoutSeconds,
          logs,
        );
        if (attempt.exitCode === 0) break;
        logs.warning('task attempt failed', {
          attempt: retried + 1,
          exit_code: attempt.exitCode,
          cause: attempt.cause,
        });
      }
      const succeeded = attempt!.exitCode === 0;
      const reason = attempt!.timedOut
        ? `the task timed out after ${timeoutSeconds} s`
        : `the container exited with code ${attempt!.exitCode}${attempt!.cause ? `: ${attempt!.cause.slice(0, 1000)}` : ''}`;
      const execution = {
        name,
        uid: randomBytes(16).toString('hex'),
        job: jobId,
        createTime,
        startTime: createTime,
        completionTime: new Date().toISOString(),
        taskCount: 1,
        succeededCount: succeeded ? 1 : 0,
        failedCount: succeeded ? 0 : 1,
        retriedCount: Math.min(retried, job.max_retries),
        conditions: [
          {
            type: 'Completed',
            state: succeeded ? 'CONDITION_SUCCEEDED' : 'CONDITION_FAILED',
            ...(succeeded ? {} : { message: `Task ${executionId}-0 failed: ${reason}` }),
          },
        ],
      };
      logs.info(succeeded ? 'execution succeeded' : 'execution failed', { reason: succeeded ? undefined : reason });
      if (succeeded) return execution;
      // The connector's shape for a long-running operation that ended in error.
      throw new WorkflowError({
        message: `Execution ${executionId} failed: ${reason}`,
        tags: ['OperationError'],
        operation: {
          name: `projects/${project}/locations/${location}/operations/${randomBytes(8).toString('hex')}`,
          done: true,
          error: { code: 2, message: `Task ${executionId}-0 failed: ${reason}` },
          metadata: execution,
        },
      });
    },
  };
}
