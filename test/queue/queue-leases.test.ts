import assert from 'node:assert/strict';
import { it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { serveWithStores } from '../support/functions.js';
import { call } from '../../local/json-http.js';

const served = serveWithStores(['queue', 'expireLeases'], { QUEUE_MAX_ATTEMPTS: '2' });
const base = (): string => served.url('queue');

type Request = {
  request_id: string;
  status: string;
  attempts: number;
  lease_id?: string;
  error?: { code: string; message: string };
};

const enqueue = async (priority = 5): Promise<string> =>
  (
    await call<Request>(`${base()}/enqueue`, {
      method: 'POST',
      body: { session_id: 's', input: { uri: 'gs://uploads-bucket/v.mp4' }, priority },
    })
  ).body.request_id;
const next = () => call<Request>(`${base()}/next?lease_seconds=1`);
const status = async (id: string) => (await call<Request>(`${base()}/status/${id}`)).body;

it('re-queues a request whose lease ran out, at its place, then fails it after the maximum attempts', async () => {
  const first = await enqueue(5);
  const second = await enqueue(5);
  const taken = await next();
  assert.equal(taken.body.request_id, first);

  await sleep(1100);
  // /next expires the lease first, so the re-queued request goes ahead of the one behind it.
  const retaken = await next();
  assert.equal(retaken.body.request_id, first);
  assert.equal(retaken.body.attempts, 2);
  assert.equal(retaken.body.error?.code, 'LEASE_EXPIRED');

  // The first worker comes back too late: its lease is gone.
  const late = await call<{ error: { code: string } }>(`${base()}/status/${first}`, {
    method: 'PUT',
    body: { status: 'COMPLETED', lease_id: taken.body.lease_id },
  });
  assert.equal(late.status, 409);
  assert.equal(late.body.error.code, 'LEASE_LOST');

  await sleep(1100);
  const expired = await call<{ expired: Array<{ request_id: string; outcome: string }> }>(served.url('expireLeases'), {
    method: 'POST',
  });
  assert.equal(expired.status, 200);
  assert.deepEqual(expired.body.expired, [{ request_id: first, outcome: 'FAILED' }]);
  const failed = await status(first);
  assert.equal(failed.status, 'FAILED');
  assert.equal(failed.attempts, 2);
  assert.equal(failed.error?.code, 'LEASE_EXPIRED');
  assert.match(failed.error?.message ?? '', /attempt 2 of 2/);

  assert.equal((await status(second)).status, 'QUEUED');
  const stats = await call<{ counts: Record<string, number> }>(`${base()}/queue`);
  assert.deepEqual(stats.body.counts, { QUEUED: 1, PROCESSING: 0, COMPLETED: 0, FAILED: 1, CANCELLED: 0 });
});

it('keeps a request whose worker renews its lease', async () => {
  for (let taken = await next(); taken.status === 200; taken = await next()) {
    const body = { status: 'COMPLETED', lease_id: taken.body.lease_id };
    assert.equal((await call(`${base()}/status/${taken.body.request_id}`, { method: 'PUT', body })).status, 200);
  }
  const id = await enqueue();
  const taken = await next();
  assert.equal(taken.body.request_id, id);
  // Each renewal extends the lease by the 1 s it was taken with; 3 × 0.6 s outlives a single lease.
  for (let i = 0; i < 3; i++) {
    await sleep(600);
    const renewed = await call(`${base()}/status/${id}`, {
      method: 'PUT',
      body: { status: 'PROCESSING', progress: i / 3, lease_id: taken.body.lease_id },
    });
    assert.equal(renewed.status, 200);
  }
  await sleep(300);
  const expired = await call<{ expired: unknown[] }>(served.url('expireLeases'), { method: 'POST' });
  assert.deepEqual(expired.body.expired, []);
  assert.equal((await status(id)).status, 'PROCESSING');

  await sleep(1100);
  const lapsed = await call<{ expired: unknown[] }>(served.url('expireLeases'), { method: 'POST' });
  assert.deepEqual(
    lapsed.body.expired,
    [{ request_id: id, outcome: 'QUEUED' }],
    'renewals use the 1 s lease it was taken with',
  );
});
