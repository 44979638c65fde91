import assert from 'node:assert/strict';
import { it } from 'node:test';
import { serveWithStores } from '../support/functions.js';
import { call } from '../../local/json-http.js';

const served = serveWithStores(['queue', 'expireLeases'], { REDIS_CONNECT_TIMEOUT_MS: '500' });
const base = (): string => served.url('queue');

const enqueue = () =>
  call<{ request_id?: string; position?: number; error?: { code: string } }>(`${base()}/enqueue`, {
    method: 'POST',
    body: { session_id: 's', input: { uri: 'gs://uploads-bucket/v.mp4' } },
  });

it('answers 503 with Retry-After while Redis is down, and serves again once it is back', async () => {
  assert.equal((await enqueue()).status, 201);

  await served.redis().stop();
  // (POST /enqueue still accepts: its record is the truth; test/queue/queue-enqueue-outage.test.ts.)
  for (const request of [call(`${base()}/next`), call(`${base()}/queue`), call(`${base()}/status/abc`)]) {
    const started = Date.now();
    const response = await request;
    assert.equal(response.status, 503);
    assert.equal(response.headers.get('retry-after'), '5');
    assert.equal((response.body as { error: { code: string } }).error.code, 'UNAVAILABLE');
    assert.ok(Date.now() - started < 3000, 'no hang while Redis is down');
  }
  const expiry = await call(served.url('expireLeases'), { method: 'POST' });
  assert.equal(expiry.status, 503);

  // A restarted server has lost its data and its script cache; scripts must be loaded again.
  await served.redis().restart();
  let response = await enqueue();
  for (let i = 0; i < 40 && response.body.position === undefined; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    response = await enqueue();
  }
  assert.equal(response.status, 201);
  const taken = await call<{ request_id: string }>(`${base()}/next`);
  assert.equal(taken.body.request_id, response.body.request_id);
});
