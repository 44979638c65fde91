/**
 * The queue API refuses values Firestore cannot store (functions/records/firestore-safe.ts) with a
 * 400 before anything changes: an /enqueue whose params break a rule queues and records nothing;
 * a PUT /status/{id} whose outputs or error do leaves the request as it was, so the next good
 * report still settles it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { serveWithStores } from '../support/functions.js';
import { call } from '../../local/json-http.js';

const served = serveWithStores(['queue']);
const base = (): string => served.url('queue');

type Body = Record<string, unknown> & {
  error?: { code: string; message: string; rule?: string };
  request_id?: string;
  lease_id?: string;
};

const json = (method: string, path: string, raw: string) =>
  call<Body>(`${base()}${path}`, { method, raw, headers: { 'content-type': 'application/json' } });
const stats = async () => (await call<Record<string, unknown>>(`${base()}/queue`)).body;
const deep = (levels: number) => `${'{"a":'.repeat(levels)}1${'}'.repeat(levels)}`;

const HOSTILE: Array<[string, string, string]> = [
  ['21 levels', deep(21), 'max_depth'],
  ['5000 levels', deep(5000), 'max_depth'],
  ['an empty key', '{"": 1}', 'empty_field_name'],
  ['a reserved name', '{"__x__": 1}', 'reserved_field_name'],
  ['an array in an array', '{"views": [[0, 1]]}', 'nested_array'],
];

describe('values Firestore cannot store', () => {
  it('POST /enqueue answers 400 UNSTORABLE_VALUE with the rule, and queues nothing', async () => {
    const before = await stats();
    for (const [name, params, rule] of HOSTILE) {
      const answer = await json(
        'POST',
        '/enqueue',
        `{"session_id":"s","input":{"uri":"gs://b-1/v.mp4"},"params":${params}}`,
      );
      assert.equal(answer.status, 400, `${name}: ${JSON.stringify(answer.body)}`);
      assert.equal(answer.body.error?.code, 'UNSTORABLE_VALUE', name);
      assert.equal(answer.body.error?.rule, rule, name);
    }
    const after = await stats();
    assert.deepEqual({ ...after, oldest_queued_age_seconds: 0 }, { ...before, oldest_queued_age_seconds: 0 });
  });

  it('PUT /status/{id} with unstorable outputs or error answers 400 and leaves the request PROCESSING under its lease', async () => {
    const queued = await json('POST', '/enqueue', '{"session_id":"s","input":{"uri":"gs://b-1/v.mp4"}}');
    assert.equal(queued.status, 201);
    const id = queued.body.request_id!;
    await json('PUT', `/status/${id}`, '{"status":"PROCESSING","stage":"frames"}');
    const before = (await call<Body>(`${base()}/status/${id}`)).body;
    assert.equal(before.status, 'PROCESSING');

    const reports = [
      ...HOSTILE.map(([name, outputs, rule]) => [name, `{"status":"COMPLETED","outputs":${outputs}}`, rule]),
      [
        'nested array in outputs',
        '{"status":"COMPLETED","outputs":{"views":[[0,1]],"splat":"gs://r/s.spz"}}',
        'nested_array',
      ],
      ['a lone surrogate in the error', '{"status":"FAILED","error":{"message":"bad \\ud800 byte"}}', 'not_utf8'],
    ];
    for (const [name, report, rule] of reports) {
      const answer = await json('PUT', `/status/${id}`, report!);
      assert.equal(answer.status, 400, `${name}: ${JSON.stringify(answer.body)}`);
      assert.equal(answer.body.error?.code, 'UNSTORABLE_VALUE', name);
      assert.equal(answer.body.error?.rule, rule, name);
    }
    const after = (await call<Body>(`${base()}/status/${id}`)).body;
    assert.deepEqual(after, before, 'nothing changed');

    const done = await json(
      'PUT',
      `/status/${id}`,
      '{"status":"COMPLETED","outputs":{"views":[0,1],"splat":"gs://r/s.spz"}}',
    );
    assert.equal(done.status, 200, JSON.stringify(done.body));
    assert.equal((await call<Body>(`${base()}/status/${id}`)).body.status, 'COMPLETED');
  });
});
