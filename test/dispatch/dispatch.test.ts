/**
 * `dispatch` and `reconcile` through the Functions Framework, on a real Redis, the Firestore
 * emulator and a local Workflows Executions API reached by the real ExecutionsClient.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { Firestore } from '@google-cloud/firestore';
import { createClient } from 'redis';
import type { RequestRecord } from '../../functions/records/record.js';
import { startFirestore, type FirestoreEmulator } from '../support/firestore-emulator.js';
import { serveFunctions, type ServedFunctions } from '../support/functions.js';
import { call } from '../support/http.js';
import { startRedis, type RedisServer } from '../support/redis-server.js';
import { startWorkflowsFake, type WorkflowsFake } from '../support/workflows-fake.js';

const MAX = 2;
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

type Report = { started: Array<{ request_id: string; execution: string }>; returned: string[] };
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

async function enqueue(session: string): Promise<string> {
  const response = await call<{ request_id: string }>(`${functions.url('queue')}/enqueue`, {
    method: 'POST',
    body: { session_id: session, input: { uri: `gs://splatflow-uploads/uploads/${session}.mp4` } },
  });
  assert.equal(response.status, 201);
  return response.body.request_id;
}

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

  it('a start that keeps failing is retried, then the request goes back to QUEUED at its place', async () => {
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
    assert.equal(inQueue.attempts, 0, 'a start that never happened is not an attempt');
    const stored = await record(id);
    assert.equal(stored.status, 'QUEUED');
    assert.equal(stored.error?.code, 'DISPATCH_FAILED');
    assert.match(stored.error?.message ?? '', /UNAVAILABLE|unavailable/);
    assert.equal(stored.lease_id ?? undefined, undefined, 'the lease is gone');
    assert.equal(await processingCount(), 0);

    // Workflows is back: it starts, in order.
    const retried = await dispatch();
    assert.deepEqual(
      retried.started.map((entry) => entry.request_id),
      [id, later],
    );
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
