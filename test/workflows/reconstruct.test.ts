/**
 * The real workflows/reconstruct.yaml through the local interpreter: stage jobs are the contract-honouring
 * test program (fixtures/stage.ts) started by the jobs launcher with the real job definitions' timeouts and
 * retries; status reports go to a real `queue` function (functions framework) on a real Redis, through a
 * recording pass-through so their order is visible.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile, access } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { createLogger } from '../../lib/log.js';
import { LocalBucket } from '../../local/bucket.js';
import { loadDefinitions, type JobDefinitions } from '../../local/jobs/definitions.js';
import { RECONSTRUCT_PATH, reconstructInterpreter, stagesNamed } from '../../local/reconstruct-workflow.js';
import { WorkflowError } from '../../local/workflows/errors.js';
import { readFileSync } from 'node:fs';
import { serveWithStores } from '../support/functions.js';
import { call } from '../../local/json-http.js';
import { recordingProxy, type RecordingProxy } from '../support/recording-proxy.js';

const STAGE_PROGRAM = fileURLToPath(new URL('./fixtures/stage.js', import.meta.url));
const REPOSITORY = fileURLToPath(new URL('../../../', import.meta.url));
const log = createLogger({ level: 'ERROR' });

const functions = serveWithStores(['queue']);
let proxy: RecordingProxy;
let root: string;
let input: string;
let definitions: JobDefinitions;

before(async () => {
  proxy = await recordingProxy(() => functions.url('queue'));
  root = await mkdtemp(join(tmpdir(), 'splatflow-reconstruct-'));
  input = join(root, 'video.mp4');
  await writeFile(input, 'not really a video');
  // The real definitions (timeouts, retries), each stage's command swapped for the test program.
  const real = loadDefinitions();
  definitions = {
    ...real,
    stages: Object.fromEntries(
      Object.entries(real.stages).map(([stage, job]) => [
        stage,
        { ...job, command: [process.execPath, STAGE_PROGRAM] },
      ]),
    ),
  };
});
after(async () => {
  await proxy.close();
  await rm(root, { recursive: true, force: true });
});

interface QueueRecord {
  status: string;
  job_execution?: string;
  stage?: string;
  progress?: number;
  error?: { message: string; code?: string; stage?: string };
  outputs?: Record<string, unknown>;
}

/** A request as the dispatcher leaves it: queued, then PROCESSING. */
async function processingRequest(): Promise<string> {
  const queued = await call<{ request_id: string }>(`${proxy.url}/enqueue`, {
    method: 'POST',
    body: { session_id: 'session-1', input: { uri: input } },
  });
  assert.equal(queued.status, 201);
  const id = queued.body.request_id;
  assert.equal(
    (await call(`${proxy.url}/status/${id}`, { method: 'PUT', body: { status: 'PROCESSING' } })).status,
    200,
  );
  return id;
}

/** Runs the workflow; answers the stages whose jobs ran, the status reports sent, and the outcome. */
async function reconstruct(
  requestId: string,
  params: Record<string, unknown>,
  prefixOf = requestId,
  outputPrefix = `gs://local-bucket/requests/${prefixOf}/`,
  stageTimeouts?: Record<string, number>,
) {
  const ran: string[] = [];
  const executions: string[] = [];
  const interpreter = reconstructInterpreter({
    definitions,
    bucket: new LocalBucket({ root, log }),
    queueUrl: proxy.url,
    cwd: REPOSITORY,
    log,
    onExecution: ({ stage, name }) => {
      ran.push(stage);
      executions.push(name);
    },
    stageTimeouts,
    // Polls and backoffs ten times faster than in the cloud: the tests' stages take milliseconds.
    sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms / 10)),
  });
  const seen = proxy.requests.length;
  let result: unknown;
  let error: WorkflowError | undefined;
  try {
    result = await interpreter.run({
      request_id: requestId,
      input_uri: input,
      output_prefix: outputPrefix,
      params,
    });
  } catch (caught) {
    if (!(caught instanceof WorkflowError)) throw caught;
    error = caught;
  }
  const reports = proxy.requests
    .slice(seen)
    .filter((request) => request.method === 'PUT' && request.path === `/status/${requestId}`)
    .map((request) => request.body as QueueRecord);
  const record = (await call<QueueRecord>(`${functions.url('queue')}/status/${requestId}`)).body;
  return { ran, executions, reports, result, error, record };
}

/** The pid a sleeping fixture stage wrote, and whether that process still runs. */
async function stageProcess(id: string, stage: string): Promise<{ pid: number; alive: boolean }> {
  const pid = Number(await readFile(join(root, 'local-bucket', 'requests', id, stage, 'pid.0'), 'utf8'));
  try {
    process.kill(pid, 0);
    return { pid, alive: true };
  } catch {
    return { pid, alive: false };
  }
}

const manifest = (id: string, stage: string) => join(root, 'local-bucket', 'requests', id, stage, 'manifest.json');

describe('workflows/reconstruct.yaml', () => {
  it('runs every stage in dependency order and reports progress in order, then COMPLETED', async () => {
    const id = await processingRequest();
    const { ran, executions, reports: all, record, result, error } = await reconstruct(id, {});
    assert.equal(error, undefined);
    // Each execution is announced as it starts (the record keeps it, to cancel it with the request).
    const announced = all.filter((report) => report.job_execution !== undefined);
    assert.deepEqual(announced.map((report) => report.job_execution).sort(), [...executions].sort());
    const reports = all.filter((report) => report.job_execution === undefined);
    assert.deepEqual(ran.slice(0, 2), ['frames', 'filter']);
    assert.deepEqual(ran.slice(2, 4).sort(), ['depth', 'sfm']);
    assert.deepEqual(ran.slice(4), ['train', 'mesh', 'export']);

    const stages = reports.map((report) => report.stage ?? report.status);
    assert.deepEqual(stages.slice(0, 2), ['frames', 'filter']);
    assert.deepEqual(stages.slice(2, 4).sort(), ['depth', 'sfm']);
    assert.deepEqual(stages.slice(4), ['train', 'mesh', 'export', 'COMPLETED']);
    const progress = reports.map((report) => report.progress ?? 0);
    assert.deepEqual(
      progress,
      [...progress].sort((a, b) => a - b),
      'progress never goes back',
    );
    assert.ok(reports.slice(0, -1).every((report) => report.status === 'PROCESSING'));
    assert.ok(reports.slice(0, -1).every((report) => report.outputs?.skipped === false));

    assert.equal(record.status, 'COMPLETED');
    assert.equal(record.progress, 1);
    const outputs = record.outputs as { request_prefix: string; timings: Record<string, { seconds: number }> };
    assert.equal(outputs.request_prefix, `gs://local-bucket/requests/${id}/`);
    assert.deepEqual(Object.keys(outputs.timings).sort(), [
      'depth',
      'export',
      'filter',
      'frames',
      'mesh',
      'sfm',
      'train',
    ]);
    assert.ok(Object.values(outputs.timings).every((timing) => timing.seconds > 0));
    assert.deepEqual(result, record.outputs);
  });

  it('marks the request FAILED with the failing stage and its cause, and a retry resumes at that stage', async () => {
    const first = await processingRequest();
    const failed = await reconstruct(first, { train: { fail: 'too few images registered (3 of 40)' } });
    assert.deepEqual(failed.error?.value && (failed.error.value as { tags: string[] }).tags, ['OperationError']);
    assert.equal(failed.record.status, 'FAILED');
    assert.equal(failed.record.error?.stage, 'train');
    assert.equal(failed.record.error?.code, 'OperationError', 'a failure that is not a refusal keeps the tag');
    assert.equal(failed.record.error?.message, 'too few images registered (3 of 40)', "the stage's own cause");
    assert.ok(!failed.ran.includes('mesh'), 'nothing runs after a failed stage');
    await access(manifest(first, 'sfm'));
    await assert.rejects(access(manifest(first, 'train')), 'a failed stage leaves no manifest');

    // The retried request works in the same folder: finished stages are skipped, train runs again.
    const retry = await processingRequest();
    const resumed = await reconstruct(retry, {}, first);
    assert.equal(resumed.error, undefined);
    assert.deepEqual(resumed.ran, ['train', 'mesh', 'export']);
    const skipped = resumed.reports.filter((report) => report.outputs?.skipped === true).map((report) => report.stage);
    assert.deepEqual(skipped.sort(), ['depth', 'filter', 'frames', 'sfm']);
    assert.equal(resumed.record.status, 'COMPLETED');
  });

  it('reports a refusing stage FAILED with code REFUSED and its cause verbatim, its work done once', async () => {
    const id = await processingRequest();
    const cause = 'only 0 of 10 frames registered (at least 60% needed): the clip may be too fast';
    const { ran, record, error } = await reconstruct(id, { skip_depth: true, sfm: { refuse: cause } });
    assert.deepEqual(ran, ['frames', 'filter', 'sfm']);
    assert.equal(record.status, 'FAILED');
    assert.deepEqual(record.error, { code: 'REFUSED', stage: 'sfm', message: cause });
    // Cloud Run retried the task (max_retries is 1) and the retry answered the refusal without redoing it.
    assert.equal(definitions.stages.sfm!.max_retries, 1);
    const failed = (error?.value as { execution: { name: string; retriedCount: number } }).execution;
    assert.equal(failed.retriedCount, 1);
    const execution = failed.name.split('/').at(-1);
    const folder = join(root, 'local-bucket', 'requests', id, 'sfm');
    assert.equal(await readFile(join(folder, 'work.log'), 'utf8'), `attempt 0 of ${execution}\n`);
  });

  it('reports the connector error, without the stage repeated, when a stage dies before recording a cause', async () => {
    const id = await processingRequest();
    const { ran, record } = await reconstruct(id, { skip_depth: true, filter: { die: true } });
    assert.deepEqual(ran, ['frames', 'filter']);
    assert.equal(record.status, 'FAILED');
    assert.equal(record.error?.stage, 'filter');
    assert.equal(record.error?.code, 'OperationError');
    assert.match(record.error?.message ?? '', /^Task splatflow-filter-[0-9a-f]{6}-0 failed: the container exited/);
  });

  it('loses no stage report to a 30 s outage of the stores behind the queue: retried, each stage run once', async () => {
    const id = await processingRequest();
    // Backoffs here run ten times faster (reconstruct above): 3 s of outage is the workflow's 30 s.
    proxy.outage(
      (request) => request.path === `/status/${id}` && (request.body as QueueRecord | undefined)?.stage === 'sfm',
      3000,
    );
    const { ran, reports, record, error } = await reconstruct(id, {});
    assert.equal(error, undefined, JSON.stringify(error?.value));
    assert.equal(record.status, 'COMPLETED');
    assert.deepEqual(ran, [...new Set(ran)], 'no stage ran twice');
    const sfmAnnounced = reports.filter((report) => report.stage === 'sfm' && report.job_execution !== undefined);
    assert.ok(sfmAnnounced.length > 3, `the report was retried through the outage (${sfmAnnounced.length} tries)`);
  });

  it('stops after sfm for the preprocess path, without running depth', async () => {
    const id = await processingRequest();
    const { ran, record } = await reconstruct(id, { stop_after: 'sfm' });
    assert.deepEqual(ran, ['frames', 'filter', 'sfm']);
    assert.equal(record.status, 'COMPLETED');
    assert.deepEqual(Object.keys((record.outputs as { timings: object }).timings).sort(), ['filter', 'frames', 'sfm']);
  });

  it('runs every stage but depth when skip_depth is set (no depth model), and completes', async () => {
    const id = await processingRequest();
    const { ran, record } = await reconstruct(id, { skip_depth: true });
    assert.deepEqual(ran, ['frames', 'filter', 'sfm', 'train', 'mesh', 'export']);
    assert.equal(record.status, 'COMPLETED');
    assert.deepEqual(
      Object.keys((record.outputs as { timings: object }).timings).sort(),
      Object.keys(definitions.stages)
        .filter((stage) => stage !== 'depth')
        .sort(),
    );
  });

  it('fails a request whose skip_depth is not a boolean before running any stage', async () => {
    const id = await processingRequest();
    const { ran, record } = await reconstruct(id, { skip_depth: 'yes' });
    assert.deepEqual(ran, []);
    assert.equal(record.status, 'FAILED');
    assert.equal(record.error?.code, 'INVALID_PARAMS');
    assert.match(record.error?.message ?? '', /skip_depth must be true or false; got "yes"/);
  });

  it('fails a request with an unknown stop_after before running any stage', async () => {
    const id = await processingRequest();
    const { ran, record, error } = await reconstruct(id, { stop_after: 'everything' });
    assert.deepEqual(ran, []);
    assert.ok(error);
    assert.equal(record.status, 'FAILED');
    assert.equal(record.error?.code, 'INVALID_PARAMS');
    assert.match(record.error?.message ?? '', /stop_after must be one of .*got "everything"/);
  });

  it('fails a request whose params are not an object before running any stage', async () => {
    const id = await processingRequest();
    const { ran, record } = await reconstruct(id, 'fast please' as unknown as Record<string, unknown>);
    assert.deepEqual(ran, []);
    assert.equal(record.status, 'FAILED');
    assert.equal(record.error?.code, 'INVALID_PARAMS');
    assert.match(record.error?.message ?? '', /params must be a JSON object; got "fast please"/);
  });

  it('fails a request whose output_prefix is not a gs:// folder before running any stage', async () => {
    const id = await processingRequest();
    const { ran, record } = await reconstruct(id, {}, id, `file:///tmp/requests/${id}/`);
    assert.deepEqual(ran, []);
    assert.equal(record.status, 'FAILED');
    assert.equal(record.error?.code, 'INVALID_PARAMS');
    assert.match(
      record.error?.message ?? '',
      /output_prefix must be a gs:\/\/BUCKET\/folder\/ ending in \/; got file:/,
    );
  });

  it('reports an sfm failure while depth runs beside it, cancels depth, and ends FAILED at sfm', async () => {
    const id = await processingRequest();
    const started = Date.now();
    const { ran, record, error } = await reconstruct(id, {
      sfm: { fail: 'no features' },
      depth: { sleep_ms: 60_000 },
    });
    assert.ok(error);
    assert.ok(ran.includes('depth'));
    assert.ok(!ran.includes('train'));
    assert.equal(record.status, 'FAILED');
    assert.equal(record.error?.stage, 'sfm');
    // The GPU job beside the failed stage does not run on (and bill) for its minute.
    assert.ok(Date.now() - started < 30_000, `the workflow waited ${Date.now() - started} ms for depth`);
    assert.equal((await stageProcess(id, 'depth')).alive, false, 'the depth process still runs');
    await assert.rejects(access(manifest(id, 'depth')), 'the cancelled depth left no manifest');
  });

  it('starts a stage that outlives its wait exactly once, cancels it, and reports FAILED with TIMEOUT', async () => {
    const id = await processingRequest();
    const timeouts = Object.fromEntries(Object.keys(definitions.stages).map((stage) => [stage, 2]));
    const started = Date.now();
    const { ran, record, error } = await reconstruct(
      id,
      { skip_depth: true, frames: { sleep_ms: 60_000 } },
      id,
      undefined,
      timeouts,
    );
    assert.ok(error);
    assert.deepEqual(ran, ['frames'], 'the stage was started once, and nothing after it');
    assert.equal(record.status, 'FAILED');
    assert.equal(record.error?.code, 'TIMEOUT');
    assert.equal(record.error?.stage, 'frames');
    assert.match(record.error?.message ?? '', /did not finish within 2 s; cancelled/);
    assert.ok(Date.now() - started < 30_000);
    assert.equal((await stageProcess(id, 'frames')).alive, false, 'the timed-out stage still runs');
  });
});

describe('static check of workflows/reconstruct.yaml', () => {
  it('names only stages that jobs/definitions.json defines, and all of them', () => {
    const named = stagesNamed(readFileSync(RECONSTRUCT_PATH, 'utf8'));
    assert.deepEqual(named.sort(), Object.keys(loadDefinitions().stages).sort());
  });

  it('refuses to load when the workflow names a stage with no job definition', () => {
    const source = readFileSync(RECONSTRUCT_PATH, 'utf8').replace('stage: mesh', 'stage: meshing');
    assert.throws(
      () =>
        reconstructInterpreter(
          { definitions, bucket: new LocalBucket({ root, log }), queueUrl: proxy.url, cwd: REPOSITORY, log },
          source,
        ),
      /no job definition: meshing/,
    );
  });
});
