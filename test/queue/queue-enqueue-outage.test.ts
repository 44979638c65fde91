/**
 * POST /enqueue while Redis is down: the request is recorded in Firestore (the truth) and answered
 * with its id, never a 503 that a retrying client would turn into a duplicate; an Idempotency-Key
 * makes every retry answer the same request; reconcile queues what Redis never got.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { serveWithStores } from '../support/functions.js';
import { call } from '../../local/json-http.js';

const served = serveWithStores(['queue', 'reconcile'], { REDIS_CONNECT_TIMEOUT_MS: '500' });

type Answer = {
  request_id?: string;
  status?: string;
  position?: number;
  duplicate?: boolean;
  error?: { code: string };
};
const enqueue = (session: string, key?: string) =>
  call<Answer>(`${served.url('queue')}/enqueue`, {
    method: 'POST',
    body: { session_id: session, input: { uri: `gs://uploads-bucket/${session}.mp4` } },
    headers: key === undefined ? {} : { 'idempotency-key': key },
  });
const reconcile = async () =>
  (await call<{ requeued: string[] }>(served.url('reconcile'), { method: 'POST' })).body.requeued;
const queuedCount = async () =>
  (await call<{ counts: Record<string, number> }>(`${served.url('queue')}/queue`)).body.counts.QUEUED;

it('answers with the request id while Redis is down; keyed retries answer the same request; nothing is duplicated', async () => {
  await served.redis().stop();
  const keyed = await enqueue('outage-keyed', 'client-op-0001');
  const plain = await enqueue('outage-plain');
  for (const answer of [keyed, plain]) {
    assert.equal(answer.status, 201, JSON.stringify(answer.body));
    assert.match(answer.body.request_id ?? '', /^[0-9a-f-]{36}$/);
    assert.equal(answer.body.status, 'QUEUED');
    assert.equal(answer.body.position, undefined, 'not in the queue yet');
  }
  // The client retries while Redis is still down: the same request, not a second one.
  const retried = await enqueue('outage-keyed', 'client-op-0001');
  assert.equal(retried.status, 200);
  assert.equal(retried.body.request_id, keyed.body.request_id);
  assert.equal(retried.body.duplicate, true);

  await served.redis().restart();
  let again = await enqueue('outage-keyed', 'client-op-0001');
  for (let i = 0; i < 40 && again.body.position === undefined; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    again = await enqueue('outage-keyed', 'client-op-0001');
  }
  assert.equal(again.status, 200);
  assert.equal(again.body.request_id, keyed.body.request_id);
  assert.equal(again.body.position, 1, 'a retry once Redis is back queues it');

  // Reconcile finds exactly the one request Redis never got: no duplicate record exists.
  assert.deepEqual(await reconcile(), [plain.body.request_id]);
  assert.equal(await queuedCount(), 2);
  const other = await enqueue('outage-keyed', 'client-op-0002');
  assert.equal(other.status, 201);
  assert.notEqual(other.body.request_id, keyed.body.request_id, 'another key is another request');
});
