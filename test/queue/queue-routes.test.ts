import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { serveWithStores } from '../support/functions.js';
import { call } from '../../local/json-http.js';

const served = serveWithStores(['queue']);
const base = (): string => served.url('queue');

type Body = Record<string, unknown> & { error?: { code: string; message: string }; request_id?: string };

const enqueue = (body: unknown) => call<Body>(`${base()}/enqueue`, { method: 'POST', body });
const update = (id: string, body: unknown) => call<Body>(`${base()}/status/${id}`, { method: 'PUT', body });
const status = (id: string) => call<Body>(`${base()}/status/${id}`);
const next = (query = '') => call<Body>(`${base()}/next${query}`);
const stats = () => call<Body & { counts: Record<string, number>; queue_length: number }>(`${base()}/queue`);

async function drain(): Promise<void> {
  while ((await next()).status === 200);
}

async function queued(uri = 'gs://uploads-bucket/video.mp4', priority?: number): Promise<string> {
  const response = await enqueue({
    session_id: 'session-1',
    input: { uri },
    ...(priority === undefined ? {} : { priority }),
  });
  assert.equal(response.status, 201);
  return response.body.request_id!;
}

async function processing(): Promise<{ id: string; lease: string }> {
  await drain();
  const id = await queued();
  const taken = await next();
  assert.equal(taken.body.request_id, id);
  return { id, lease: taken.body.lease_id as string };
}

describe('POST /enqueue', () => {
  it('queues a request and answers its id, status and position', async () => {
    await drain();
    const first = await enqueue({
      session_id: 'abc',
      input: { uri: 'gs://uploads-bucket/a.mp4' },
      priority: 3,
      params: { preset: 'preview' },
    });
    assert.equal(first.status, 201);
    assert.equal(first.body.status, 'QUEUED');
    assert.equal(first.body.position, 1);
    assert.match(first.body.request_id!, /^[0-9a-f-]{36}$/);
    const second = await enqueue({ session_id: 'abc', input: { uri: 'gs://uploads-bucket/b.mp4' } });
    assert.equal(second.body.position, 1, 'default priority 5 goes ahead of priority 3');

    const record = await status(first.body.request_id!);
    assert.equal(record.status, 200);
    assert.deepEqual(
      { ...record.body, created_at: undefined, updated_at: undefined },
      {
        request_id: first.body.request_id,
        session_id: 'abc',
        input: { uri: 'gs://uploads-bucket/a.mp4' },
        priority: 3,
        params: { preset: 'preview' },
        status: 'QUEUED',
        attempts: 0,
        position: 2,
        created_at: undefined,
        updated_at: undefined,
      },
    );
    assert.ok(Date.now() - Date.parse(record.body.created_at as string) < 10_000);
  });
});

describe('GET /status/{id}', () => {
  it('is 404 for an unknown request and 400 for a malformed id', async () => {
    const unknown = await status('0f4a3c1e-0000-0000-0000-000000000000');
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error?.code, 'NOT_FOUND');
    const malformed = await status('..%2F..%2Fetc%2Fpasswd');
    assert.equal(malformed.status, 400);
    assert.equal(malformed.body.error?.code, 'INVALID_REQUEST_ID');
  });
});

describe('GET /next', () => {
  it('answers 204 when nothing is queued', async () => {
    await drain();
    const empty = await fetch(`${base()}/next`);
    assert.equal(empty.status, 204);
    assert.equal(await empty.text(), '');
  });

  it('takes the highest priority first, FIFO within a priority, and leases it', async () => {
    await drain();
    const low = await queued('gs://uploads-bucket/low.mp4', 1);
    const highA = await queued('gs://uploads-bucket/high-a.mp4', 9);
    const mid = await queued('gs://uploads-bucket/mid.mp4', 5);
    const highB = await queued('gs://uploads-bucket/high-b.mp4', 9);
    const order: string[] = [];
    for (let i = 0; i < 4; i++) {
      const taken = await next('?lease_seconds=120');
      assert.equal(taken.status, 200);
      assert.equal(taken.body.status, 'PROCESSING');
      assert.equal(taken.body.attempts, 1);
      assert.match(taken.body.lease_id as string, /^[0-9a-f-]{36}$/);
      const lease = Date.parse(taken.body.lease_expires_at as string) - Date.parse(taken.body.started_at as string);
      assert.equal(lease, 120_000);
      order.push(taken.body.request_id!);
    }
    assert.deepEqual(order, [highA, highB, mid, low]);
    assert.equal((await next()).status, 204);
  });

  it('refuses a malformed lease_seconds', async () => {
    for (const query of [
      '?lease_seconds=0',
      '?lease_seconds=abc',
      '?lease_seconds=1.5',
      '?lease_seconds=999999',
      '?other=1',
    ]) {
      const response = await next(query);
      assert.equal(response.status, 400, query);
      assert.equal(response.body.error?.code, 'INVALID_QUERY');
    }
  });
});

describe('PUT /status/{id} transitions', () => {
  it('PROCESSING → PROCESSING records progress and renews the lease', async () => {
    const { id, lease } = await processing();
    const before = (await status(id)).body.lease_expires_at as string;
    await new Promise((resolve) => setTimeout(resolve, 20));
    const progress = await update(id, { status: 'PROCESSING', stage: 'frames', progress: 0.25, lease_id: lease });
    assert.equal(progress.status, 200);
    assert.equal(progress.body.stage, 'frames');
    assert.equal(progress.body.progress, 0.25);
    assert.ok(Date.parse(progress.body.lease_expires_at as string) > Date.parse(before));
  });

  it('PROCESSING → COMPLETED stores outputs and ends the lease', async () => {
    const { id, lease } = await processing();
    const outputs = { splat: 'gs://results/r/scene.ply', mesh: 'gs://results/r/mesh.glb' };
    const done = await update(id, { status: 'COMPLETED', stage: 'export', progress: 1, outputs, lease_id: lease });
    assert.equal(done.status, 200);
    const record = (await status(id)).body;
    assert.equal(record.status, 'COMPLETED');
    assert.deepEqual(record.outputs, outputs);
    assert.equal(record.lease_expires_at, undefined);
    assert.ok(record.finished_at);
  });

  it('PROCESSING → FAILED records the stage and cause', async () => {
    const { id } = await processing();
    const error = { message: 'only 23 of 150 frames registered', code: 'SFM_QUALITY', stage: 'sfm' };
    const failed = await update(id, { status: 'FAILED', stage: 'sfm', error });
    assert.equal(failed.status, 200);
    assert.deepEqual((await status(id)).body.error, error);
  });

  it('QUEUED → CANCELLED takes the request out of the queue', async () => {
    await drain();
    const id = await queued();
    const cancelled = await update(id, { status: 'CANCELLED' });
    assert.equal(cancelled.status, 200);
    assert.equal(cancelled.body.status, 'CANCELLED');
    assert.equal((await next()).status, 204);
  });

  it('PROCESSING → CANCELLED ends the lease, and a later report from its worker is refused', async () => {
    await drain();
    const id = await queued();
    assert.equal((await update(id, { status: 'PROCESSING', stage: 'frames' })).status, 200);
    const cancelled = await update(id, { status: 'CANCELLED' });
    assert.equal(cancelled.status, 200);
    assert.equal(cancelled.body.status, 'CANCELLED');
    const after = (await status(id)).body as { status: string; lease_expires_at?: string; finished_at?: string };
    assert.equal(after.status, 'CANCELLED');
    assert.equal(after.lease_expires_at, undefined);
    assert.ok(after.finished_at);
    const late = await update(id, { status: 'PROCESSING', stage: 'filter', progress: 0.25 });
    assert.equal(late.status, 409);
    assert.equal((late.body.error as unknown as { current_status: string }).current_status, 'CANCELLED');
    assert.equal((await next()).status, 204);
  });

  it('QUEUED → PROCESSING takes that request out of the queue and leases it', async () => {
    await drain();
    const id = await queued();
    const started = await update(id, { status: 'PROCESSING', stage: 'frames' });
    assert.equal(started.status, 200);
    assert.equal(started.body.attempts, 1);
    assert.ok(started.body.lease_id);
    assert.equal((await next()).status, 204);
  });

  const illegal: Array<[string, string]> = [
    ['QUEUED', 'COMPLETED'],
    ['QUEUED', 'FAILED'],
    ['QUEUED', 'QUEUED'],
    ['PROCESSING', 'QUEUED'],
    ['COMPLETED', 'PROCESSING'],
    ['COMPLETED', 'CANCELLED'],
    ['COMPLETED', 'FAILED'],
    ['COMPLETED', 'QUEUED'],
    ['FAILED', 'COMPLETED'],
    ['FAILED', 'PROCESSING'],
    ['CANCELLED', 'QUEUED'],
    ['CANCELLED', 'PROCESSING'],
    ['CANCELLED', 'CANCELLED'],
  ];
  for (const [from, to] of illegal) {
    it(`${from} → ${to} is 409 with the current status, and changes nothing`, async () => {
      await drain();
      const id = await queued();
      if (from !== 'QUEUED') {
        const first = from === 'CANCELLED' ? 'CANCELLED' : 'PROCESSING';
        assert.equal((await update(id, { status: first })).status, 200);
        if (from === 'COMPLETED' || from === 'FAILED')
          assert.equal(
            (await update(id, { status: from, ...(from === 'FAILED' ? { error: { message: 'x' } } : {}) })).status,
            200,
          );
      }
      const before = (await status(id)).body;
      const refused = await update(id, { status: to });
      assert.equal(refused.status, 409);
      assert.equal(refused.body.error?.code, 'ILLEGAL_TRANSITION');
      assert.equal((refused.body.error as unknown as { current_status: string }).current_status, from);
      assert.deepEqual((await status(id)).body, before);
    });
  }

  it('refuses an update under a lease that is not the current one', async () => {
    const { id } = await processing();
    const refused = await update(id, { status: 'COMPLETED', lease_id: 'not-the-lease' });
    assert.equal(refused.status, 409);
    assert.equal(refused.body.error?.code, 'LEASE_LOST');
    assert.equal((await status(id)).body.status, 'PROCESSING');
  });

  it('is 404 for an unknown request', async () => {
    const response = await update('no-such-request', { status: 'COMPLETED' });
    assert.equal(response.status, 404);
  });
});

describe('GET /queue', () => {
  it('counts per status and priority, queue length and the oldest waiting age', async () => {
    await drain();
    const before = (await stats()).body;
    assert.equal(before.queue_length, 0);
    assert.equal(before.oldest_queued_age_seconds, null);
    await queued('gs://uploads-bucket/one.mp4', 2);
    await new Promise((resolve) => setTimeout(resolve, 50));
    await queued('gs://uploads-bucket/two.mp4', 8);
    const cancelled = await queued('gs://uploads-bucket/three.mp4', 8);
    await update(cancelled, { status: 'CANCELLED' });
    const after = (await stats()).body as Body & {
      counts: Record<string, number>;
      by_priority: Record<string, Record<string, number>>;
      queue_length: number;
      oldest_queued_age_seconds: number;
    };
    assert.equal(after.queue_length, 2);
    assert.equal(after.counts.QUEUED, 2);
    assert.equal(after.counts.CANCELLED! - before.counts.CANCELLED!, 1);
    assert.equal(after.by_priority['2']!.QUEUED, 1);
    assert.equal(after.by_priority['8']!.QUEUED, 1);
    assert.ok(after.oldest_queued_age_seconds >= 0.05, `oldest age ${after.oldest_queued_age_seconds}`);
  });
});

describe('bad input', () => {
  const cases: Array<{
    name: string;
    path: string;
    method: string;
    raw?: string;
    body?: unknown;
    headers?: Record<string, string>;
    status: number;
    code: string;
  }> = [
    {
      name: 'malformed JSON',
      path: '/enqueue',
      method: 'POST',
      raw: '{"session_id": ',
      headers: { 'content-type': 'application/json' },
      status: 400,
      code: 'MALFORMED_BODY',
    },
    {
      name: 'not JSON at all',
      path: '/enqueue',
      method: 'POST',
      raw: 'session_id=a',
      headers: { 'content-type': 'text/plain' },
      status: 415,
      code: 'UNSUPPORTED_MEDIA_TYPE',
    },
    { name: 'no body', path: '/enqueue', method: 'POST', status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
    { name: 'a JSON array', path: '/enqueue', method: 'POST', body: [1, 2], status: 400, code: 'INVALID_BODY' },
    {
      name: 'missing session_id',
      path: '/enqueue',
      method: 'POST',
      body: { input: { uri: 'gs://uploads-bucket/a.mp4' } },
      status: 400,
      code: 'INVALID_BODY',
    },
    {
      name: 'missing input',
      path: '/enqueue',
      method: 'POST',
      body: { session_id: 'a' },
      status: 400,
      code: 'INVALID_BODY',
    },
    {
      name: 'unknown field',
      path: '/enqueue',
      method: 'POST',
      body: { session_id: 'a', input: { uri: 'gs://uploads-bucket/a.mp4' }, admin: true },
      status: 400,
      code: 'INVALID_BODY',
    },
    {
      name: 'priority as string',
      path: '/enqueue',
      method: 'POST',
      body: { session_id: 'a', input: { uri: 'gs://uploads-bucket/a.mp4' }, priority: '9' },
      status: 400,
      code: 'INVALID_BODY',
    },
    {
      name: 'priority out of range',
      path: '/enqueue',
      method: 'POST',
      body: { session_id: 'a', input: { uri: 'gs://uploads-bucket/a.mp4' }, priority: 10 },
      status: 400,
      code: 'INVALID_BODY',
    },
    {
      name: 'fractional priority',
      path: '/enqueue',
      method: 'POST',
      body: { session_id: 'a', input: { uri: 'gs://uploads-bucket/a.mp4' }, priority: 1.5 },
      status: 400,
      code: 'INVALID_BODY',
    },
    {
      name: 'uri of another scheme',
      path: '/enqueue',
      method: 'POST',
      body: { session_id: 'a', input: { uri: 'http://169.254.169.254/x' } },
      status: 400,
      code: 'INVALID_BODY',
    },
    {
      name: 'session id with a path',
      path: '/enqueue',
      method: 'POST',
      body: { session_id: '../../x', input: { uri: 'gs://uploads-bucket/a.mp4' } },
      status: 400,
      code: 'INVALID_BODY',
    },
    {
      name: 'params not an object',
      path: '/enqueue',
      method: 'POST',
      body: { session_id: 'a', input: { uri: 'gs://uploads-bucket/a.mp4' }, params: 'x' },
      status: 400,
      code: 'INVALID_BODY',
    },
    {
      name: 'oversized body',
      path: '/enqueue',
      method: 'POST',
      body: { session_id: 'a', input: { uri: 'gs://uploads-bucket/a.mp4' }, params: { pad: 'x'.repeat(70 * 1024) } },
      status: 413,
      code: 'BODY_TOO_LARGE',
    },
    {
      name: 'unknown status',
      path: '/status/abc',
      method: 'PUT',
      body: { status: 'DONE' },
      status: 400,
      code: 'INVALID_BODY',
    },
    {
      name: 'progress above 1',
      path: '/status/abc',
      method: 'PUT',
      body: { status: 'PROCESSING', progress: 2 },
      status: 400,
      code: 'INVALID_BODY',
    },
    {
      name: 'error without message',
      path: '/status/abc',
      method: 'PUT',
      body: { status: 'FAILED', error: { code: 'X' } },
      status: 400,
      code: 'INVALID_BODY',
    },
    { name: 'unknown route', path: '/admin', method: 'GET', status: 404, code: 'UNKNOWN_ROUTE' },
    { name: 'wrong method', path: '/enqueue', method: 'GET', status: 405, code: 'METHOD_NOT_ALLOWED' },
    { name: 'DELETE on a status', path: '/status/abc', method: 'DELETE', status: 405, code: 'METHOD_NOT_ALLOWED' },
  ];
  for (const testCase of cases) {
    it(`${testCase.name} → ${testCase.status} ${testCase.code}, queue unchanged`, async () => {
      const before = (await stats()).body;
      const response = await call<Body>(`${base()}${testCase.path}`, testCase);
      assert.equal(response.status, testCase.status);
      assert.equal(response.body.error?.code, testCase.code);
      assert.ok(response.body.error?.message);
      assert.deepEqual(
        { ...(await stats()).body, oldest_queued_age_seconds: 0 },
        { ...before, oldest_queued_age_seconds: 0 },
      );
    });
  }

  it('names the method allowed on a 405', async () => {
    const response = await call(`${base()}/enqueue`, { method: 'GET' });
    assert.equal(response.headers.get('allow'), 'POST');
  });
});
