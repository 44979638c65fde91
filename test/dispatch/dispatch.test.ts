/**
 * `dispatch` and `reconcile` through the Functions Framework, on a real Redis, the Firestore
 * emulator and a local Workflows Executions API reached by the real ExecutionsClient.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { Firestore } from '@google-cloud/firestore';
import { createClient } from 'redis';
import type { RequestRecord } from '../../functions/records/request-record.js';
import { startFirestore, type FirestoreEmulator } from '../../local/services/firestore-emulator.js';
import { serveFunctions, type ServedFunctions } from '../../local/services/functions.js';
import { call } from '../../local/json-http.js';
import { startRedis, type RedisServer } from '../../local/services/redis-server.js';
import { startWorkflowsFake, type WorkflowsFake } from '../support/workflows-fake.js';

const MAX = 2;
const BATCH = 5;
let redis: RedisServer;
let firestore: FirestoreEmulator;
let workflows: WorkflowsFake;
let functions: ServedFunctions;
let db: Firestore;

before(async () => {
  [redis, firestore, workflows] = await Promise.all([startRedis(), startFirestore(), startWorkflowsFake()]);
  functions = await serveFunctions(['queue', 'dispatch', 'reconcile', 'trigger'], {
    REDIS_URL: redis.url,
    FIRESTORE_EMULATOR_HOST: firestore.host,
    WORKFLOWS_EMULATOR_HOST: workflows.host,
    GOOGLE_CLOUD_PROJECT: 'splatflow-test',
    WORKFLOW_LOCATION: 'europe-west4',
    WORKFLOW_NAME: 'reconstruct-test',
    MAX_CONCURRENT_RECONSTRUCTIONS: String(MAX),
    DISPATCH_START_RETRIES: '2',
    DISPATCH_RETRY_DELAY_MS: '10',
    DISPATCH_LEASE_SECONDS: '14400',
    QUEUE_MAX_ATTEMPTS: '3',
    RECONCILE_BATCH: String(BATCH),
    OUTPUT_PREFIX: 'gs://splatflow-results/requests/',
    AUTO_DISPATCH: 'false',
    AUTH_MODE: 'local',
  });
  db = new Firestore({ projectId: 'splatflow-test' });
});
after(async () => {
  await functions.close();
  await db.terminate();
  await Promise.all([redis.stop(), workflows.stop()]);
  firestore.stop();
});

type Report = {
  started: Array<{ request_id: string; execution: string }>;
  returned: string[];
  failed: Array<{ request_id: string; error: { code: string; message: string } }>;
};
type Queued = {
  status: string;
  attempts: number;
  position?: number;
  lease_expires_at?: string;
  error?: { code: string };
};

const dispatch = async () => {
  const response = await call<Report>(functions.url('dispatch'), { method: 'POST' });
  assert.equal(response.status, 200, JSON.stringify(response.body));
  return response.body;
};
const reconcile = async () =>
  (
    await call<{ requeued: string[]; settled: Array<{ request_id: string; status: string }> }>(
      functions.url('reconcile'),
      { method: 'POST' },
    )
  ).body;
const queued = async (id: string) => (await call<Queued>(`${functions.url('queue')}/status/${id}`)).body;
const record = async (id: string) => (await db.collection('requests').doc(id).get()).data() as RequestRecord;
const processingCount = async () =>
  (await call<{ counts: Record<string, number> }>(`${functions.url('queue')}/queue`)).body.counts.PROCESSING;

async function enqueue(session: string, params?: Record<string, unknown>): Promise<string> {
  const response = await call<{ request_id: string }>(`${functions.url('queue')}/enqueue`, {
    method: 'POST',
    body: { session_id: session, input: { uri: `gs://splatflow-uploads/uploads/${session}.mp4` }, params },
  });
  assert.equal(response.status, 201, JSON.stringify(response.body));
  return response.body.request_id;
}

const executionsOf = (id: string) => workflows.executions.filter((execution) => execution.argument.request_id === id);

/** What the workflow does at its end: report COMPLETED, then its execution ends. */
async function finish(id: string): Promise<void> {
  const { execution } = await record(id);
  const done = await call(`${functions.url('queue')}/status/${id}`, {
    method: 'PUT',
    body: { status: 'COMPLETED', stage: 'export', progress: 1 },
  });
  assert.equal(done.status, 200);
  workflows.end(execution as string, { state: 'SUCCEEDED', result: {} });
}

/** Each test starts with nothing running and nothing queued. */
beforeEach(async () => {
  for (const doc of (await db.collection('requests').where('status', '==', 'PROCESSING').get()).docs) {
    await finish(doc.id);
  }
  for (const doc of (await db.collection('requests').where('status', '==', 'QUEUED').get()).docs) {
    await call(`${functions.url('queue')}/status/${doc.id}`, { method: 'PUT', body: { status: 'CANCELLED' } });
  }
});

describe('dispatch', () => {
  it(`never has more than ${MAX} executions in flight, even with concurrent dispatchers`, async () => {
    const ids = [];
    for (let i = 0; i < 6; i++) ids.push(await enqueue(`cap-${i}`));
    const reports = await Promise.all(Array.from({ length: 5 }, () => dispatch()));
    const started = reports.flatMap((report) => report.started);
    assert.equal(started.length, MAX);
    assert.deepEqual(
      started.map((entry) => entry.request_id).sort(),
      ids.slice(0, MAX).sort(),
      'the oldest requests go first',
    );
    assert.equal(workflows.active().length, MAX);
    assert.equal(await processingCount(), MAX);

    const first = started[0]!;
    const execution = workflows.executions.find((candidate) => candidate.name === first.execution)!;
    assert.match(
      execution.name,
      /^projects\/splatflow-test\/locations\/europe-west4\/workflows\/reconstruct-test\/executions\//,
    );
    assert.deepEqual(Object.keys(execution.argument).sort(), ['input_uri', 'output_prefix', 'params', 'request_id']);
    const stored = await record(first.request_id);
    assert.equal(stored.status, 'PROCESSING');
    assert.equal(stored.execution, first.execution);
    assert.equal(stored.attempts, 1);
    const lease = Date.parse((await queued(first.request_id)).lease_expires_at!) - Date.now();
    assert.ok(lease > 3.9 * 3600_000, `a whole workflow's lease (${lease} ms)`);
    // A stage report from the workflow renews it for as long again.
    const report = await call(`${functions.url('queue')}/status/${first.request_id}`, {
      method: 'PUT',
      body: { status: 'PROCESSING', stage: 'frames', progress: 0.1 },
    });
    assert.equal(report.status, 200);
    const renewed = Date.parse((await queued(first.request_id)).lease_expires_at!) - Date.now();
    assert.ok(renewed > 3.9 * 3600_000, `renewed for a whole workflow (${renewed} ms)`);

    // One ends: exactly one more starts.
    await finish(first.request_id);
    const next = await dispatch();
    assert.deepEqual(
      next.started.map((entry) => entry.request_id),
      [ids[MAX]],
    );
    assert.equal(workflows.active().length, MAX);
    assert.equal(workflows.maxActive(), MAX);
  });

  it('a start that keeps failing is retried, goes back to QUEUED at its place, and fails after the most attempts', async () => {
    const id = await enqueue('flaky');
    const later = await enqueue('flaky-later');
    const callsBefore = workflows.createCalls();
    workflows.failCreates(3);
    const report = await dispatch();
    assert.deepEqual(report.started, []);
    assert.deepEqual(report.returned, [id]);
    assert.equal(workflows.createCalls() - callsBefore, 3, 'first try + 2 retries');

    const inQueue = await queued(id);
    assert.equal(inQueue.status, 'QUEUED');
    assert.equal(inQueue.position, 1, 'it keeps its place ahead of later requests');
    assert.equal(inQueue.attempts, 1, 'the attempt counts, so it cannot loop forever');
    const stored = await record(id);
    assert.equal(stored.status, 'QUEUED');
    assert.equal(stored.attempts, 1);
    assert.equal(stored.error?.code, 'DISPATCH_FAILED');
    assert.match(stored.error?.message ?? '', /UNAVAILABLE/);
    assert.equal(stored.lease_id ?? undefined, undefined, 'the lease is gone');
    assert.equal(await processingCount(), 0);

    // Workflows keeps failing: the second round returns it again, the third (its last attempt) fails it
    // and goes on to the request behind it.
    workflows.failCreates(6);
    assert.deepEqual((await dispatch()).returned, [id]);
    const last = await dispatch();
    assert.deepEqual(
      last.failed.map((entry) => [entry.request_id, entry.error.code]),
      [[id, 'DISPATCH_FAILED']],
    );
    assert.match(last.failed[0]!.error.message, /attempt 3 of 3/);
    assert.deepEqual(
      last.started.map((entry) => entry.request_id),
      [later],
    );
    assert.equal((await record(id)).status, 'FAILED');
    assert.equal((await queued(id)).status, 'FAILED');
    assert.equal(executionsOf(id).length, 0);
  });

  it('a start Workflows refuses (400) fails that request with its cause at once; the round goes on', async () => {
    const refused = await enqueue('refused');
    const behind = [await enqueue('behind-1'), await enqueue('behind-2')];
    const callsBefore = workflows.createCalls();
    workflows.failCreates(1, { code: 400, status: 'INVALID_ARGUMENT' });
    const report = await dispatch();
    assert.deepEqual(
      report.failed.map((entry) => [entry.request_id, entry.error.code]),
      [[refused, 'WORKFLOW_REFUSED']],
    );
    assert.deepEqual(report.started.map((entry) => entry.request_id).sort(), [...behind].sort());
    assert.equal(workflows.createCalls() - callsBefore, 3, 'no retry of a refusal; one create each behind it');
    const stored = await record(refused);
    assert.equal(stored.status, 'FAILED');
    assert.match(stored.error?.message ?? '', /INVALID_ARGUMENT/);
    assert.equal((await queued(refused)).status, 'FAILED');
    assert.equal(await processingCount(), MAX);
  });

  it("admission refuses params that would push the argument over Workflows' 32 KB; just under it starts", async () => {
    const bytes = (params: Record<string, unknown>) =>
      Buffer.byteLength(
        JSON.stringify({
          request_id: '00000000-0000-0000-0000-000000000000',
          input_uri: 'gs://splatflow-uploads/uploads/big.mp4',
          output_prefix: 'gs://splatflow-results/requests/00000000-0000-0000-0000-000000000000/',
          params,
        }),
      );
    const base = bytes({ note: '' });
    const fitting = { note: 'x'.repeat(32_000 - base) };
    const over = { note: 'x'.repeat(32_000 - base + 1) };
    const before = (await db.collection('requests').count().get()).data().count;
    const body = (params: Record<string, unknown>) => ({
      session_id: 'big',
      input: { uri: 'gs://splatflow-uploads/uploads/big.mp4' },
      params,
    });
    const refusedEnqueue = await call<{ error: { code: string; message: string } }>(
      `${functions.url('queue')}/enqueue`,
      { method: 'POST', body: body(over) },
    );
    const refusedTrigger = await call<{ error: { code: string; message: string } }>(
      `${functions.url('trigger')}/trigger-reconstruction`,
      { method: 'POST', body: body(over), headers: { 'X-Splatflow-Caller': 'big@example.com' } },
    );
    for (const refused of [refusedEnqueue, refusedTrigger]) {
      assert.equal(refused.status, 400);
      assert.equal(refused.body.error.code, 'PARAMS_TOO_LARGE');
      assert.match(refused.body.error.message, /32001 bytes; Workflows accepts at most 32000/);
    }
    assert.equal((await db.collection('requests').count().get()).data().count, before, 'nothing recorded');

    const id = await enqueue('big', fitting);
    const report = await dispatch();
    assert.deepEqual(
      report.started.map((entry) => entry.request_id),
      [id],
      'Workflows takes the largest argument admission lets through',
    );
  });

  it('a create whose answer was lost is not repeated: the retry finds the execution by its label', async () => {
    const id = await enqueue('lost-answer');
    const callsBefore = workflows.createCalls();
    workflows.loseCreateAnswers(1);
    const report = await dispatch();
    assert.deepEqual(
      report.started.map((entry) => entry.request_id),
      [id],
    );
    assert.equal(workflows.createCalls() - callsBefore, 1, 'created once');
    const [only, ...others] = executionsOf(id);
    assert.equal(others.length, 0, 'exactly one execution for the request');
    assert.deepEqual(only!.labels, { request_id: id });
    assert.equal((await record(id)).execution, only!.name);
  });

  it('a request cancelled while its execution starts has that execution cancelled, not left running', async () => {
    const id = await enqueue('cancelled-while-starting');
    // The cancel lands after Workflows created the execution and before the dispatcher could record it,
    // so the cancel finds no execution on the record to stop.
    let cancel: number | undefined;
    workflows.beforeNextCreateAnswer(async () => {
      cancel = (await call(`${functions.url('queue')}/status/${id}`, { method: 'PUT', body: { status: 'CANCELLED' } }))
        .status;
    });
    const report = await dispatch();
    assert.equal(cancel, 200);
    assert.deepEqual(report, { started: [], returned: [], failed: [] });
    const [only, ...others] = executionsOf(id);
    assert.equal(others.length, 0);
    assert.equal(only!.state, 'CANCELLED');
    const stored = await record(id);
    assert.equal(stored.status, 'CANCELLED');
    assert.equal((await queued(id)).status, 'CANCELLED');
    assert.equal(await processingCount(), 0);
  });
});

describe('a dispatcher crash between creating the execution and recording it', () => {
  it('the next dispatch adopts the running execution instead of starting a second one', async () => {
    const id = await enqueue('crash-after-create');
    // What the crashed dispatcher did before dying: create the labelled execution. Its start lease then
    // ran out and the request went back to QUEUED, where it is now.
    const argument = {
      request_id: id,
      input_uri: 'gs://splatflow-uploads/uploads/crash-after-create.mp4',
      output_prefix: `gs://splatflow-results/requests/${id}/`,
      params: {},
    };
    const parent = 'projects/splatflow-test/locations/europe-west4/workflows/reconstruct-test';
    const created = await call<{ name: string }>(`http://${workflows.host}/v1/${parent}/executions`, {
      method: 'POST',
      body: { argument: JSON.stringify(argument), labels: { request_id: id } },
    });
    assert.equal(created.status, 200);
    const callsBefore = workflows.createCalls();

    const report = await dispatch();
    assert.deepEqual(report.started, [{ request_id: id, execution: created.body.name }]);
    assert.equal(workflows.createCalls(), callsBefore, 'no second create');
    assert.equal(executionsOf(id).length, 1);
    const stored = await record(id);
    assert.equal(stored.status, 'PROCESSING');
    assert.equal(stored.execution, created.body.name);
  });
});

describe('a crash between the record and the queue', () => {
  it('a request the record says has ended is not started again; the queue is settled to match', async () => {
    const cancelled = await enqueue('cancelled-before-crash');
    const completed = await enqueue('completed-before-crash');
    // What a crash right after the Firestore write of a status change leaves: Redis still QUEUED.
    await db.collection('requests').doc(cancelled).update({ status: 'CANCELLED' });
    await db.collection('requests').doc(completed).update({ status: 'COMPLETED' });
    const executions = workflows.executions.length;

    const report = await dispatch();
    assert.deepEqual(report.started, []);
    assert.equal(workflows.executions.length, executions, 'no execution started');
    assert.equal((await queued(cancelled)).status, 'CANCELLED');
    assert.equal((await queued(completed)).status, 'COMPLETED');
    assert.equal(await processingCount(), 0);
  });
});

describe('reconcile', () => {
  it('re-queues QUEUED records that Redis lost (failover)', async () => {
    const id = await enqueue('lost');
    const client = createClient({ url: redis.url });
    await client.connect();
    await client.flushAll();
    await client.close();
    assert.equal((await call(`${functions.url('queue')}/status/${id}`)).status, 404);

    const report = await reconcile();
    assert.deepEqual(report.requeued, [id]);
    assert.equal((await queued(id)).status, 'QUEUED');
    assert.deepEqual((await reconcile()).requeued, [], 'nothing left to repair');
    const started = await dispatch();
    assert.deepEqual(
      started.started.map((entry) => entry.request_id),
      [id],
    );
  });

  it(`restores every lost request over several runs when more than a batch (${BATCH}) were lost`, async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3 * BATCH - 2; i++) ids.push(await enqueue(`lost-many-${i}`));
    const client = createClient({ url: redis.url });
    await client.connect();
    await client.flushAll();
    await client.close();

    const runs: string[][] = [];
    for (let run = 0; run < 4; run++) runs.push((await reconcile()).requeued);
    assert.deepEqual(
      runs.map((requeued) => requeued.length),
      [BATCH, BATCH, BATCH - 2, 0],
      'each run takes up where the last one stopped',
    );
    assert.deepEqual(runs.flat().sort(), [...ids].sort());
    for (const id of ids) assert.equal((await queued(id)).status, 'QUEUED');
  });

  it('settles PROCESSING records whose execution ended without reporting', async () => {
    const failing = await enqueue('crashes');
    const succeeding = await enqueue('silent-success');
    const { started } = await dispatch();
    assert.equal(started.length, 2);
    const executionOf = (id: string) => started.find((entry) => entry.request_id === id)!.execution;
    assert.deepEqual((await reconcile()).settled, [], 'running executions are left alone');

    workflows.end(executionOf(failing), { state: 'FAILED', error: 'sfm: only 3 of 40 images registered' });
    const outputs = { splat: 'gs://splatflow-results/requests/x/scene.spz' };
    workflows.end(executionOf(succeeding), { state: 'SUCCEEDED', result: { outputs } });
    const report = await reconcile();
    assert.deepEqual(
      report.settled.sort((a, b) => a.request_id.localeCompare(b.request_id)),
      [
        { request_id: failing, status: 'FAILED' },
        { request_id: succeeding, status: 'COMPLETED' },
      ].sort((a, b) => a.request_id.localeCompare(b.request_id)),
    );
    const failed = await record(failing);
    assert.equal(failed.status, 'FAILED');
    assert.deepEqual(failed.error, { code: 'WORKFLOW_FAILED', message: 'sfm: only 3 of 40 images registered' });
    assert.equal((await queued(failing)).status, 'FAILED');
    assert.deepEqual((await record(succeeding)).outputs, outputs);
    assert.equal((await queued(succeeding)).status, 'COMPLETED');
    assert.equal(await processingCount(), 0);
  });
});

describe('local mode', () => {
  it('takes the caller from the X-Splatflow-Caller header, and requires it', async () => {
    const url = `${functions.url('trigger')}/trigger-reconstruction`;
    const payload = { session_id: 'local', input: { uri: '/srv/splatflow/uploads/local.mp4' } };
    const missing = await call<{ error?: { code: string; message: string } }>(url, { method: 'POST', body: payload });
    assert.equal(missing.status, 401);
    assert.match(missing.body.error?.message ?? '', /x-splatflow-caller/);
    const accepted = await call<{ request_id: string }>(url, {
      method: 'POST',
      body: payload,
      headers: { 'X-Splatflow-Caller': 'Dev@Example.com' },
    });
    assert.equal(accepted.status, 202);
    assert.equal((await record(accepted.body.request_id)).owner, 'dev@example.com');
  });
});
