/**
 * Fault drills on the local stack (issue 25; docs/faults.md): the machinery fails while requests are in
 * flight, and no request is lost, duplicated or run past the concurrency cap. Stages are the test stage
 * program (test/workflows/fixtures/stage.ts), which logs every attempt in `{stage}/work.log`.
 */
import assert from 'node:assert/strict';
import { access, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Firestore } from '@google-cloud/firestore';
import { createLogger } from '../../lib/log.js';
import type { RequestRecord } from '../../functions/records/request-record.js';
import { startStack, type Stack } from '../../local/stack.js';
import { call } from '../../local/json-http.js';
import { until } from '../support/http.js';
import { testStageDefinitions } from '../support/stage-definitions.js';

const MAX_CONCURRENT = 3;
let data: string;
let stack: Stack;
let db: Firestore;

before(async () => {
  data = await mkdtemp(join(tmpdir(), 'splatflow-faults-'));
  stack = await startStack({
    data,
    bucket: 'splatflow-local',
    apiPort: 0,
    log: createLogger({ level: 'ERROR' }),
    definitions: testStageDefinitions(),
    env: { MAX_CONCURRENT_RECONSTRUCTIONS: String(MAX_CONCURRENT), LOG_LEVEL: 'ERROR' },
  });
  process.env.FIRESTORE_EMULATOR_HOST = stack.urls.firestore;
  db = new Firestore({ projectId: 'local-project' });
});
after(async () => {
  await db?.terminate();
  await stack?.stop();
  await rm(data, { recursive: true, force: true });
});

const records = async (): Promise<RequestRecord[]> =>
  (await db.collection('requests').get()).docs.map((doc) => doc.data() as RequestRecord);
const withStatus = (all: RequestRecord[], status: string) => all.filter((record) => record.status === status);

/** Every stage folder of a request, with the attempts its work.log counts. */
async function attempts(id: string): Promise<Record<string, number>> {
  const folder = join(data, 'splatflow-local', 'requests', id);
  const counted: Record<string, number> = {};
  for (const stage of await readdir(folder)) {
    const log = await readFile(join(folder, stage, 'work.log'), 'utf8').catch(() => undefined);
    if (log !== undefined) counted[stage] = log.trim().split('\n').length;
  }
  return counted;
}

it('Redis lost and restarted empty with 3 requests PROCESSING and 20 QUEUED: each completes once, never over the cap', async () => {
  const queue = stack.urls.functions.queue!;
  await mkdir(join(data, 'splatflow-local', 'inputs'), { recursive: true });
  await writeFile(join(data, 'splatflow-local', 'inputs', 'video.mp4'), 'a stand-in video');
  const ids: string[] = [];
  for (let i = 0; i < MAX_CONCURRENT + 20; i++) {
    const queued = await call<{ request_id: string }>(`${queue}/enqueue`, {
      method: 'POST',
      body: {
        session_id: `redis-lost-${i}`,
        input: { uri: 'gs://splatflow-local/inputs/video.mp4' },
        // frames takes a while, so that the loss lands mid-stage and an excess over the cap would be seen.
        params: { skip_depth: true, frames: { sleep_ms: 1500 } },
      },
    });
    assert.equal(queued.status, 201);
    ids.push(queued.body.request_id);
  }
  const ours = async () => (await records()).filter((record) => ids.includes(record.request_id));
  const running = await until(
    '3 requests running',
    async () => {
      const all = await ours();
      const processing = withStatus(all, 'PROCESSING').filter((record) => record.execution);
      return processing.length === MAX_CONCURRENT && withStatus(all, 'QUEUED').length === 20 ? processing : undefined;
    },
    60,
  );

  await stack.redis.stop();
  await stack.redis.restart();
  const restarted = Date.now();
  // Cloud Scheduler's part, often: reconcile (which rebuilds Redis from the records), lease expiry and dispatch.
  let maxProcessing = 0;
  let requeuedAfter: number | undefined;
  for (;;) {
    for (const target of ['reconcile', 'expireLeases', 'dispatch']) {
      // 503 while the functions reconnect: the next tick is the retry, as with Cloud Scheduler.
      const answer = await call(`${stack.urls.functions[target]}`, { method: 'POST' });
      assert.ok([200, 503].includes(answer.status), `${target}: ${answer.status}`);
    }
    const all = await ours();
    maxProcessing = Math.max(maxProcessing, withStatus(all, 'PROCESSING').length);
    const stats = (await call<{ counts: Record<string, number> }>(`${queue}/queue`)).body;
    if (requeuedAfter === undefined && (stats.counts.QUEUED ?? 0) + (stats.counts.PROCESSING ?? 0) >= 20) {
      requeuedAfter = Date.now() - restarted;
    }
    if (withStatus(all, 'COMPLETED').length === ids.length) break;
    assert.ok(Date.now() - restarted < 180_000, `not all completed: ${JSON.stringify(all.map((r) => r.status))}`);
    assert.deepEqual(withStatus(all, 'FAILED'), []);
    await sleep(300);
  }
  const recovered = Date.now() - restarted;
  process.stderr.write(
    `redis lost: queue rebuilt ${requeuedAfter} ms after the restart, all ${ids.length} completed after ${recovered} ms\n`,
  );
  assert.ok(maxProcessing <= MAX_CONCURRENT, `${maxProcessing} PROCESSING at once; the cap is ${MAX_CONCURRENT}`);
  for (const id of ids) {
    assert.deepEqual(
      await attempts(id),
      { frames: 1, filter: 1, sfm: 1, train: 1, mesh: 1, export: 1 },
      `request ${id}${running.some((r) => r.request_id === id) ? ' (running at the loss)' : ''}`,
    );
    // Redis agrees with the record once more.
    assert.equal((await call<{ status: string }>(`${queue}/status/${id}`)).body.status, 'COMPLETED', id);
  }
});

const exists = (path: string): Promise<boolean> =>
  access(path).then(
    () => true,
    () => false,
  );

it('a stage process killed halfway (train, mesh, export) is run again by the retry; nothing half-made is used', async () => {
  const queue = stack.urls.functions.queue!;
  const killed = ['train', 'mesh', 'export'];
  const queued = await call<{ request_id: string }>(`${queue}/enqueue`, {
    method: 'POST',
    body: {
      session_id: 'killed-stage',
      input: { uri: 'gs://splatflow-local/inputs/video.mp4' },
      params: { skip_depth: true, ...Object.fromEntries(killed.map((stage) => [stage, { sleep_ms: 2000 }])) },
    },
  });
  assert.equal(queued.status, 201);
  const id = queued.body.request_id;
  const folder = join(data, 'splatflow-local', 'requests', id);
  for (const [i, stage] of killed.entries()) {
    // SIGKILL mid-stage, as an OOM kill, a preemption or a timeout would end it: nothing of it can record anything.
    const pid = await until(
      `${stage}'s first attempt`,
      async () => Number(await readFile(join(folder, stage, 'pid.0'), 'utf8').catch(() => '')) || undefined,
      60,
    );
    process.kill(pid, 'SIGKILL');
    assert.equal(await exists(join(folder, stage, 'manifest.json')), false, `${stage} looks finished`);
    const next = killed[i + 1];
    if (next) assert.equal(await exists(join(folder, next)), false, `${next} started before ${stage} finished`);
  }
  const record = await until(
    'the request to end',
    async () => {
      const current = (await db.collection('requests').doc(id).get()).data() as RequestRecord;
      return ['COMPLETED', 'FAILED'].includes(current.status) ? current : undefined;
    },
    60,
  );
  assert.equal(record.status, 'COMPLETED', JSON.stringify(record.error));
  // Each killed stage ran twice (the retry), every other stage once, and each finished with its manifest.
  assert.deepEqual(await attempts(id), { frames: 1, filter: 1, sfm: 1, train: 2, mesh: 2, export: 2 });
  for (const stage of killed) assert.ok(await exists(join(folder, stage, 'manifest.json')), stage);
});
