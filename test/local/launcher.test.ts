/**
 * The jobs launcher as the jobs.run connector: real child processes, started with the stage contract's
 * environment and nothing else of the host, their output streamed into the log, timeouts and task retries
 * enforced, and the connector's result and error shapes.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, sep } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createLogger } from '../../lib/log.js';
import { LocalBucket } from '../../local/bucket.js';
import type { StageJob } from '../../local/jobs/definitions.js';
import { createLauncher, jobsRunConnector, type ExecutionResource } from '../../local/jobs/launcher.js';
import { WorkflowError } from '../../local/workflows/errors.js';
import { Interpreter } from '../../local/workflows/interpreter.js';

const lines: Array<Record<string, unknown>> = [];
const log = createLogger({ level: 'DEBUG', sink: (line) => lines.push(JSON.parse(line) as Record<string, unknown>) });
let root: string;

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'splatflow-launcher-'));
  process.env.SPLATFLOW_HOST_SECRET = 'must not reach a stage';
});
after(() => rm(root, { recursive: true, force: true }));

const job = (script: string, extra: Partial<StageJob> = {}): StageJob => ({
  image: 'node-cpu',
  command: [process.execPath, '-e', script],
  cpu: '1',
  memory: '1Gi',
  gpu: 0,
  timeout_seconds: 30,
  max_retries: 0,
  ...extra,
});

function connector(stages: Record<string, StageJob>) {
  const run = jobsRunConnector({
    definitions: { images: { 'node-cpu': { dockerfile: 'x' } }, stages },
    jobPrefix: 'splatflow-',
    cwd: root,
    bucket: new LocalBucket({ root, log }),
    log,
  })['googleapis.run.v2.projects.locations.jobs.run']!;
  return (stage: string, env: Record<string, string> = {}, timeout?: string) =>
    run({
      name: `projects/p/locations/r/jobs/splatflow-${stage}`,
      body: {
        overrides: {
          containerOverrides: [{ env: Object.entries(env).map(([name, value]) => ({ name, value })) }],
          ...(timeout ? { timeout } : {}),
        },
      },
    });
}

async function failure(promise: Promise<unknown>): Promise<Record<string, unknown>> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof WorkflowError);
    return error.value as Record<string, unknown>;
  }
  throw new Error('the call succeeded');
}

describe('jobs launcher', () => {
  it('runs the command with the contract environment, gs:// URIs mapped to the local bucket, no other host variables', async () => {
    const run = connector({
      frames: job(
        `process.stdout.write(JSON.stringify({severity: 'INFO', message: 'env seen', env: process.env}) + '\\n')`,
      ),
    });
    const execution = (await run('frames', {
      SPLATFLOW_STAGE: 'frames',
      SPLATFLOW_REQUEST_PREFIX: 'gs://local-bucket/requests/r1/',
      SPLATFLOW_INPUT_URI: 'gs://uploads/in/video.mp4',
      SPLATFLOW_PARAMS: '{"count":3}',
    })) as { name: string; succeededCount: number; conditions: Array<{ state: string }> };
    assert.match(
      execution.name,
      /^projects\/p\/locations\/r\/jobs\/splatflow-frames\/executions\/splatflow-frames-[0-9a-f]{6}$/,
    );
    assert.equal(execution.succeededCount, 1);
    assert.equal(execution.conditions[0]!.state, 'CONDITION_SUCCEEDED');

    const seen = lines.find((line) => line.message === 'env seen' && line.stage === 'frames');
    const env = seen?.env as Record<string, string>;
    assert.equal(env.SPLATFLOW_REQUEST_PREFIX, join(root, 'local-bucket', 'requests', 'r1') + sep);
    assert.equal(env.SPLATFLOW_INPUT_URI, join(root, 'uploads', 'in', 'video.mp4'));
    assert.equal(env.SPLATFLOW_PARAMS, '{"count":3}');
    assert.equal(env.METADATA_SERVER_DETECTION, 'none');
    assert.equal(env.SPLATFLOW_HOST_SECRET, undefined);
    assert.deepEqual(
      [env.CLOUD_RUN_JOB, env.CLOUD_RUN_EXECUTION, env.CLOUD_RUN_TASK_INDEX, env.CLOUD_RUN_TASK_COUNT],
      ['splatflow-frames', execution.name.split('/').at(-1), '0', '1'],
    );
    assert.equal(env.CLOUD_RUN_TASK_ATTEMPT, '0');
  });

  it('each retry of a task sees the same CLOUD_RUN_EXECUTION and the next CLOUD_RUN_TASK_ATTEMPT', async () => {
    const run = connector({
      depth: job(
        `process.stdout.write(JSON.stringify({severity: 'INFO', message: 'attempt seen', task: [process.env.CLOUD_RUN_EXECUTION, process.env.CLOUD_RUN_TASK_ATTEMPT]}) + '\\n'); process.exit(1)`,
        { max_retries: 2 },
      ),
    });
    const before = lines.length;
    const error = await failure(run('depth'));
    const execution = (error.operation as { metadata: { name: string } }).metadata.name.split('/').at(-1);
    const seen = lines.slice(before).filter((line) => line.message === 'attempt seen');
    assert.deepEqual(
      seen.map((line) => line.task),
      [
        [execution, '0'],
        [execution, '1'],
        [execution, '2'],
      ],
    );
  });

  it('a failing task is retried max_retries times, then raises OperationError with the last stderr line', async () => {
    const run = connector({
      sfm: job(`console.log('working'); console.error('only 2 of 30 images registered'); process.exit(3)`, {
        max_retries: 2,
      }),
    });
    const before = lines.length;
    const error = await failure(run('sfm'));
    assert.deepEqual(error.tags, ['OperationError']);
    assert.match(String(error.message), /exited with code 3: only 2 of 30 images registered$/);
    const operation = error.operation as { done: boolean; metadata: { failedCount: number; retriedCount: number } };
    assert.equal(operation.done, true);
    assert.equal(operation.metadata.failedCount, 1);
    assert.equal(operation.metadata.retriedCount, 2);
    const attempts = lines.slice(before).filter((line) => line.message === 'task attempt failed');
    assert.equal(attempts.length, 3);
    assert.ok(
      lines.slice(before).some((line) => line.message === 'working' && line.stage === 'sfm'),
      'stdout is streamed',
    );
  });

  it('kills a task that runs past its timeout', async () => {
    const run = connector({ train: job('setTimeout(() => {}, 60000)') });
    const started = Date.now();
    const error = await failure(run('train', {}, '0.5s'));
    assert.match(String(error.message), /timed out after 0.5 s/);
    assert.ok(Date.now() - started < 5000);
  });

  it('a command that cannot start fails with the reason', async () => {
    const run = connector({ mesh: { ...job(''), command: ['/nonexistent/python3', 'main.py'] } });
    const error = await failure(run('mesh'));
    assert.match(String(error.message), /cannot start \/nonexistent\/python3/);
  });

  it("a definition's `python3` is this machine's Python: SPLATFLOW_PYTHON, else the repository's .venv", async () => {
    // The image's `python3` stands for the interpreter local/python.ts names; node stands in for one here.
    const run = connector({ train: { ...job(''), command: ['python3', '-e', 'process.exit(0)'] } });
    const saved = process.env.SPLATFLOW_PYTHON;
    try {
      process.env.SPLATFLOW_PYTHON = process.execPath;
      await run('train');
      delete process.env.SPLATFLOW_PYTHON;
      const error = await failure(run('train'));
      assert.ok(
        String(error.message).includes(`cannot start ${join(root, '.venv', 'bin', 'python')}`),
        String(error.message),
      );
    } finally {
      if (saved === undefined) delete process.env.SPLATFLOW_PYTHON;
      else process.env.SPLATFLOW_PYTHON = saved;
    }
  });

  it('an unknown job or malformed name is the API error the connector raises (404, 400)', async () => {
    const run = connector({});
    const missing = await failure(run('frames'));
    assert.deepEqual(missing.tags, ['HttpError']);
    assert.equal(missing.code, 404);
    const run2 = jobsRunConnector({
      definitions: { images: {}, stages: {} },
      jobPrefix: 'splatflow-',
      cwd: root,
      bucket: new LocalBucket({ root, log }),
      log,
    })['googleapis.run.v2.projects.locations.jobs.run']!;
    assert.equal((await failure(run2({ name: 'jobs/frames' }))).code, 400);
  });

  describe('as the documented connector waits (connector_params)', () => {
    const slow = { train: job('setTimeout(() => {}, 60000)', { timeout_seconds: 120 }) };
    const launcher = () => {
      const started: string[] = [];
      const jobs = createLauncher({
        definitions: { images: { 'node-cpu': { dockerfile: 'x' } }, stages: slow },
        jobPrefix: 'splatflow-',
        cwd: root,
        bucket: new LocalBucket({ root, log }),
        log,
        onExecution: ({ name }) => started.push(name),
      });
      return { jobs, started };
    };
    const name = 'projects/p/locations/r/jobs/splatflow-train';

    it('raises TimeoutError past connector_params.timeout while the execution runs on', async () => {
      const { jobs, started } = launcher();
      const run = jobs.calls['googleapis.run.v2.projects.locations.jobs.run']!;
      const error = await failure(run({ name, connector_params: { timeout: 0.5 } }));
      assert.deepEqual(error.tags, ['TimeoutError']);
      assert.equal(started.length, 1);
      const execution = jobs.get(started[0]!)!;
      assert.equal(execution.runningCount, 1);
      assert.equal(execution.completionTime, undefined);
      const cancelled = (await jobs.cancel(started[0]!))!;
      assert.equal(cancelled.cancelledCount, 1);
      assert.equal(cancelled.runningCount, 0);
    });

    it('answers the operation at once with skip_polling; executions.get and cancel follow it', async () => {
      const { jobs } = launcher();
      const operation = (await jobs.calls['googleapis.run.v2.projects.locations.jobs.run']!({
        name,
        connector_params: { skip_polling: true },
      })) as { done: boolean; metadata: ExecutionResource };
      assert.equal(operation.done, false);
      const get = jobs.calls['googleapis.run.v2.projects.locations.jobs.executions.get']!;
      assert.equal(((await get({ name: operation.metadata.name })) as ExecutionResource).runningCount, 1);
      const cancel = jobs.calls['googleapis.run.v2.projects.locations.jobs.executions.cancel']!;
      const ended = (await cancel({ name: operation.metadata.name })) as ExecutionResource;
      assert.ok(ended.completionTime);
      assert.equal(ended.succeededCount, 0);
      assert.equal(ended.cancelledCount, 1);
      assert.equal((await failure(get({ name: `${name}/executions/none` }))).code, 404);
    });

    // Why the workflow no longer waits in the connector: http.default_retry_predicate retries a TimeoutError
    // (https://cloud.google.com/workflows/docs/reference/stdlib/http/default_retry_predicate), so a stage
    // outliving the wait gets a second execution beside the first.
    it('a blocking jobs.run retried with http.default_retry_predicate starts a slow stage twice', async () => {
      const { jobs, started } = launcher();
      const source = `
main:
  steps:
    - run:
        try:
          call: googleapis.run.v2.projects.locations.jobs.run
          args:
            name: ${name}
            connector_params:
              timeout: 0.3
        retry:
          predicate: \${http.default_retry_predicate}
          max_retries: 1
        except:
          as: e
          steps:
            - done:
                return: \${e.tags}
`;
      const interpreter = Interpreter.load(source, { calls: jobs.calls, log, sleep: () => Promise.resolve() });
      assert.deepEqual(await interpreter.run(), ['TimeoutError']);
      assert.equal(started.length, 2);
      assert.deepEqual(
        started.map((execution) => jobs.get(execution)!.runningCount),
        [1, 1],
      );
      await Promise.all(started.map((execution) => jobs.cancel(execution)));
    });
  });
});
