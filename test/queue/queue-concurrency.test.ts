import assert from 'node:assert/strict';
import { it } from 'node:test';
import { serveWithStores } from '../support/functions.js';
import { call } from '../../local/json-http.js';

const served = serveWithStores(['queue']);
const base = (): string => served.url('queue');

interface Taken {
  request_id: string;
  priority: number;
  created_at: string;
}

it('hands 1,000 requests to 20 concurrent callers exactly once, in priority-then-FIFO order', async () => {
  const total = 1000;
  const enqueued: Array<{ id: string; priority: number; order: number }> = [];
  // Enqueued in waves of concurrent calls; the arrival order is the order Redis saw, recovered
  // from the per-priority FIFO below, so only the set and the priorities are known up front.
  for (let wave = 0; wave < total / 100; wave++) {
    const responses = await Promise.all(
      Array.from({ length: 100 }, async (_, i) => {
        const priority = (wave * 7 + i * 3) % 10;
        const response = await call<{ request_id: string }>(`${base()}/enqueue`, {
          method: 'POST',
          body: { session_id: `s${wave}`, input: { uri: `gs://uploads-bucket/v${wave}-${i}.mp4` }, priority },
        });
        assert.equal(response.status, 201);
        return { id: response.body.request_id, priority, order: wave };
      }),
    );
    enqueued.push(...responses);
  }

  const perCaller: Taken[][] = [];
  await Promise.all(
    Array.from({ length: 20 }, async (_, caller) => {
      const mine: Taken[] = [];
      perCaller[caller] = mine;
      for (;;) {
        const response = await call<Taken>(`${base()}/next?lease_seconds=600`);
        if (response.status === 204) return;
        assert.equal(response.status, 200);
        mine.push(response.body);
      }
    }),
  );

  const handedOut = perCaller.flat().map((taken) => taken.request_id);
  assert.equal(handedOut.length, total, 'every request handed out');
  assert.equal(new Set(handedOut).size, total, 'none handed out twice');
  assert.deepEqual(new Set(handedOut), new Set(enqueued.map((request) => request.id)), 'none lost or invented');

  const wave = new Map(enqueued.map((request) => [request.id, request.order]));
  for (const mine of perCaller) {
    for (let i = 1; i < mine.length; i++) {
      const earlier = mine[i - 1]!;
      const later = mine[i]!;
      assert.ok(earlier.priority >= later.priority, 'a caller never gets a lower priority before a higher one');
      if (earlier.priority === later.priority) {
        assert.ok(wave.get(earlier.request_id)! <= wave.get(later.request_id)!, 'FIFO within a priority');
      }
    }
  }

  const stats = await call<{ counts: Record<string, number>; queue_length: number }>(`${base()}/queue`);
  assert.equal(stats.body.queue_length, 0);
  assert.equal(stats.body.counts.PROCESSING, total);
  assert.equal(stats.body.counts.QUEUED, 0);
});
