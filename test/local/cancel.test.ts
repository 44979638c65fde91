/**
 * Cancelling a request while a stage runs, end to end on the local stack: the queue's PUT /status/{id}
 * CANCELLED reaches the durable record, the functions cancel the workflow execution (Workflows API) and the
 * job execution it started (Cloud Run Admin API, `@google-cloud/run`), both served by the local API, whose
 * launcher kills the stage's process. Nothing starts it again.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Firestore } from '@google-cloud/firestore';
import { createLogger } from '../../lib/log.js';
import type { RequestRecord } from '../../functions/records/request-record.js';
import { loadDefinitions } from '../../local/jobs/definitions.js';
import { startStack, type Stack } from '../../local/stack.js';
import { call } from '../../local/json-http.js';

const STAGE_PROGRAM = fileURLToPath(new URL('../workflows/fixtures/stage.js', import.meta.url));
let data: string;
let stack: Stack;
let db: Firestore;

before(async () => {
  data = await mkdtemp(join(tmpdir(), 'splatflow-cancel-'));
  const real = loadDefinitions();
  const stages = Object.fromEntries(
    Object.entries(real.stages).map(([stage, job]) => [stage, { ...job, command: [process.execPath, STAGE_PROGRAM] }]),
  );
  stack = await startStack({
    data,
    bucket: 'splatflow-local',
    apiPort: 0,
    log: createLogger({ level: 'ERROR' }),
    definitions: { ...real, stages },
  });
  process.env.FIRESTORE_EMULATOR_HOST = stack.urls.firestore;
  db = new Firestore({ projectId: 'local-project' });
});
after(async () => {
  await db?.terminate();
  await stack?.stop();
  await rm(data, { recursive: true, force: true });
});

async function until<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, seconds = 30): Promise<T> {
  for (let i = 0; i < seconds * 10; i++) {
    const value = await probe();
    if (value !== undefined) return value;
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}`);
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

it('cancelling a request mid-stage stops its process, records CANCELLED, and nothing restarts it', async () => {
  const queue = stack.urls.functions.queue!;
  await mkdir(join(data, 'splatflow-local', 'inputs'), { recursive: true });
  await writeFile(join(data, 'splatflow-local', 'inputs', 'video.mp4'), 'a stand-in video');
  const queued = await call<{ request_id: string }>(`${queue}/enqueue`, {
    method: 'POST',
    body: {
      session_id: 'cancel',
      input: { uri: 'gs://splatflow-local/inputs/video.mp4' },
      params: { skip_depth: true, frames: { sleep_ms: 120_000 } },
    },
  });
  assert.equal(queued.status, 201);
  const id = queued.body.request_id;
  const folder = join(data, 'splatflow-local', 'requests', id, 'frames');
  // The enqueue kicks the dispatcher, which starts the workflow, which starts frames.
  const pid = await until(
    'the frames process',
    async () => Number(await readFile(join(folder, 'pid.0'), 'utf8').catch(() => '')) || undefined,
  );
  assert.ok(alive(pid));
  const record = async () => (await db.collection('requests').doc(id).get()).data() as RequestRecord;
  // Mid-stage: the dispatcher has recorded the workflow execution and the workflow its job execution
  // (a cancel that lands before the first of these is the dispatch test's case).
  const running = await until('the executions on the record', async () => {
    const current = await record();
    return current.execution && current.job_executions?.length ? current : undefined;
  });
  assert.equal(running.status, 'PROCESSING');

  const cancelled = await call<{ status: string }>(`${queue}/status/${id}`, {
    method: 'PUT',
    body: { status: 'CANCELLED' },
  });
  assert.equal(cancelled.status, 200);
  assert.equal(cancelled.body.status, 'CANCELLED');
  await until('the frames process to end', () => (alive(pid) ? undefined : true), 15);

  const api = stack.urls.api;
  const workflow = await until('the workflow execution to end', async () => {
    const execution = (await call<{ state: string }>(`${api}/v1/${running.execution}`)).body;
    return execution.state === 'ACTIVE' ? undefined : execution;
  });
  assert.equal(workflow.state, 'CANCELLED');
  const job = (
    await call<{ cancelledCount: number; succeededCount: number }>(`${api}/v2/${running.job_executions![0]}`)
  ).body;
  assert.equal(job.cancelledCount, 1);
  assert.equal(job.succeededCount, 0);

  // Nothing starts it again: dispatch, lease expiry and reconciliation leave it as it is.
  for (const target of ['dispatch', 'expireLeases', 'reconcile']) {
    assert.equal((await call(`${stack.urls.functions[target]}`, { method: 'POST' })).status, 200, target);
  }
  await sleep(1500);
  assert.equal((await record()).status, 'CANCELLED');
  assert.equal((await call<{ status: string }>(`${queue}/status/${id}`)).body.status, 'CANCELLED');
  assert.deepEqual(await readdir(folder).then((files) => files.filter((file) => file.startsWith('pid.'))), ['pid.0']);
  assert.equal((await readFile(join(folder, 'work.log'), 'utf8')).trim().split('\n').length, 1);
});
