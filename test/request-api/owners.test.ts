/**
 * What a caller can reach (google mode, ID tokens): only inputs under the configured upload
 * locations, there only its own scope; uploads signed into that scope and owned by it; bodies that
 * Firestore could not store refused before the rate limit or dedup count them. Functions Framework,
 * real Redis, the Firestore emulator, a local Workflows API.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Firestore } from '@google-cloud/firestore';
import { callerScope } from '../../functions/request-api/scope.js';
import { uploadRequestId } from '../../functions/request-api/upload.js';
import type { ServedFunctions } from '../../local/services/functions.js';
import { startGoogleModeStack, type GoogleModeStack } from '../support/google-mode-stack.js';
import { call } from '../../local/json-http.js';
import type { IdTokenIssuer } from '../support/id-tokens.js';
import { validV4Signature } from '../support/signing-key.js';
import type { WorkflowsFake } from '../support/workflows-fake.js';

const UPLOADS = 'gs://splatflow-uploads/uploads/';
const IMPORTS = 'gs://splatflow-imports/batch/';

let functions: ServedFunctions;
let db: Firestore;
let key: GoogleModeStack['key'];
let workflows: WorkflowsFake;
let issuer: IdTokenIssuer;
let close: GoogleModeStack['close'];

before(async () => {
  ({ functions, db, key, workflows, issuer, close } = await startGoogleModeStack(
    ['trigger', 'preprocessVideo', 'uploads', 'onUpload', 'queue'],
    {
      INPUT_LOCATIONS: `${UPLOADS},${IMPORTS}`,
      UPLOADS_PREFIX: 'uploads/',
      AUTO_DISPATCH: 'false',
      // Upload status objects are test/request-api/upload-status.test.ts's; here no storage API answers.
      UPLOAD_STATUS_OBJECTS: 'false',
    },
  ));
});
after(() => close());

type Body = Record<string, unknown> & {
  error?: { code: string; message: string; rule?: string };
  request_id?: string;
  duplicate?: boolean;
};

let callers = 0;
const newCaller = () => `owner-${++callers}@example.com`;
const auth = async (email: string) => ({ authorization: `Bearer ${await issuer.token(email)}` });

const post = async (target: string, path: string, email: string, payload: unknown, headers = {}) =>
  call<Body>(`${functions.url(target)}${path}`, {
    method: 'POST',
    body: payload,
    headers: { ...(await auth(email)), ...headers },
  });
const trigger = (email: string, payload: unknown, headers = {}) =>
  post('trigger', '/trigger-reconstruction', email, payload, headers);
const requestUpload = (email: string, payload: unknown) => post('uploads', '/uploads', email, payload);
const own = (email: string, name: string, location = UPLOADS) => `${location}${callerScope(email)}/${name}`;
const request = (uri: string, extra: Record<string, unknown> = {}) => ({
  session_id: 'owned',
  input: { uri },
  ...extra,
});

/** What a refused call must leave as it was. */
async function state() {
  const queue = (
    await call<{ queue_length: number; counts: Record<string, number> }>(`${functions.url('queue')}/queue`)
  ).body;
  return {
    queued: queue.queue_length,
    counts: queue.counts,
    records: (await db.collection('requests').count().get()).data().count,
    workflows: workflows.createCalls(),
  };
}

async function deliverFinalized(uri: string, generation = '1764600000000001') {
  const name = uri.slice('gs://splatflow-uploads/'.length);
  const object = { bucket: 'splatflow-uploads', name, generation, size: '2500000', contentType: 'video/mp4' };
  const response = await fetch(functions.url('onUpload'), {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'ce-specversion': '1.0',
      'ce-type': 'google.cloud.storage.object.v1.finalized',
      'ce-source': '//storage.googleapis.com/projects/_/buckets/splatflow-uploads',
      'ce-id': `event-${generation}`,
      'ce-time': new Date().toISOString(),
    },
    body: JSON.stringify(object),
  });
  await response.arrayBuffer();
  assert.equal(response.status, 204);
  return uploadRequestId(object);
}

describe('POST /uploads', () => {
  it("answers a V4 signed PUT URL for that one object, in the caller's own scope", async () => {
    const alice = newCaller();
    const bob = newCaller();
    const answer = await requestUpload(alice, { session_id: 'kitchen', file_name: 'walk.mp4' });
    assert.equal(answer.status, 201, JSON.stringify(answer.body));
    assert.equal(answer.body.uri, own(alice, 'kitchen/walk.mp4'));
    assert.equal(answer.body.method, 'PUT');
    const url = new URL(String(answer.body.upload_url));
    assert.equal(url.hostname, 'storage.googleapis.com');
    assert.equal(`gs:/${url.pathname}`, answer.body.uri, 'the URL names that object');
    const headers = answer.body.headers as Record<string, string>;
    assert.deepEqual(headers, {
      'content-type': 'video/mp4',
      'x-goog-content-length-range': `1,${4 * 1024 ** 3}`,
      'x-goog-if-generation-match': '0',
    });
    assert.equal(answer.body.max_bytes, 4 * 1024 ** 3);
    assert.ok(validV4Signature(url.href, key.file, 'PUT', headers), 'a valid signature for PUT with its headers');
    assert.ok(!validV4Signature(url.href, key.file, 'GET', headers), 'not for reading');
    assert.ok(
      !validV4Signature(url.href.replace('walk.mp4', 'other.mp4'), key.file, 'PUT', headers),
      'nor another name',
    );
    for (const name of Object.keys(headers)) {
      const fewer = Object.fromEntries(Object.entries(headers).filter(([other]) => other !== name));
      assert.ok(!validV4Signature(url.href, key.file, 'PUT', fewer), `nor without ${name}`);
      assert.ok(!validV4Signature(url.href, key.file, 'PUT', { ...headers, [name]: '9' }), `nor another ${name}`);
    }
    const expires = Date.parse(String(answer.body.expires_at)) - Date.now();
    assert.ok(expires > 3500_000 && expires <= 3600_000, `expires in ${expires} ms`);

    const theirs = await requestUpload(bob, { session_id: 'kitchen', file_name: 'walk.mp4' });
    assert.equal(theirs.body.uri, own(bob, 'kitchen/walk.mp4'));
    assert.notEqual(callerScope(alice), callerScope(bob));
  });

  it('lets no caller choose the folder: scopes, paths and odd names are refused', async () => {
    const alice = newCaller();
    const before = await state();
    for (const payload of [
      { session_id: 'kitchen', file_name: 'walk.mp4', scope: callerScope('victim@example.com') },
      { session_id: 'kitchen', file_name: '../walk.mp4' },
      { session_id: 'kitchen', file_name: `${callerScope('victim@example.com')}/walk.mp4` },
      { session_id: '../caller-0', file_name: 'walk.mp4' },
      { session_id: 'kitchen', file_name: '.hidden' },
      { session_id: 'kitchen' },
    ]) {
      const answer = await requestUpload(alice, payload);
      assert.equal(answer.status, 400, JSON.stringify(payload));
      assert.equal(answer.body.error?.code, 'INVALID_BODY');
    }
    const anonymous = await call<Body>(`${functions.url('uploads')}/uploads`, {
      method: 'POST',
      body: { session_id: 'kitchen', file_name: 'walk.mp4' },
    });
    assert.equal(anonymous.status, 401);
    assert.deepEqual(await state(), before);
  });
});

describe('owners', () => {
  it('an upload in a scope starts a request owned by that scope, its session the folder after it', async () => {
    const alice = newCaller();
    const id = await deliverFinalized(own(alice, 'garden/take1.mp4'));
    const record = (await db.collection('requests').doc(id).get()).data()!;
    assert.equal(record.owner, callerScope(alice));
    assert.equal(record.session_id, 'garden');
    assert.equal(record.origin, 'upload');
  });

  it('A and B each reach only their own uploads, both ways, and a refusal tells nothing about existence', async () => {
    const alice = newCaller();
    const bob = newCaller();
    const aliceUpload = own(alice, 'kitchen/walk.mp4');
    const bobUpload = own(bob, 'hall/walk.mp4');
    await deliverFinalized(aliceUpload, '1764600000000101');
    await deliverFinalized(bobUpload, '1764600000000102');

    const before = await state();
    const refusals = [
      await trigger(bob, request(aliceUpload)),
      await trigger(alice, request(bobUpload)),
      await post('preprocessVideo', '/preprocess-video', bob, request(aliceUpload)),
      await post('preprocessVideo', '/preprocess-video', alice, request(bobUpload)),
      await trigger(bob, request(own(alice, 'kitchen/', IMPORTS))),
      await trigger(bob, request(`${UPLOADS}${callerScope(alice)}-x/kitchen/walk.mp4`)),
    ];
    for (const refusal of refusals) {
      assert.equal(refusal.status, 403, JSON.stringify(refusal.body));
      assert.equal(refusal.body.error?.code, 'INPUT_NOT_OWNED');
      assert.match(refusal.body.error?.message ?? '', /one of your own uploads/);
    }
    // An object of Alice's that does not exist is refused to Bob in the very same words.
    const absent = await trigger(bob, request(own(alice, 'kitchen/never-uploaded.mp4')));
    assert.deepEqual(absent.body, refusals[0]!.body);
    assert.deepEqual(await state(), before, 'no record, queue entry or workflow start');

    const mine = [await trigger(alice, request(aliceUpload)), await trigger(bob, request(bobUpload))];
    for (const [index, answer] of mine.entries()) {
      assert.equal(answer.status, 202, JSON.stringify(answer.body));
      const record = (await db.collection('requests').doc(answer.body.request_id!).get()).data()!;
      assert.equal(record.owner, [alice, bob][index]);
    }
  });

  it('refused calls take no rate-limit slot', async () => {
    const bob = newCaller();
    const victim = own(newCaller(), 'x/walk.mp4');
    for (let i = 0; i < 12; i++) assert.equal((await trigger(bob, request(victim, { priority: i % 10 }))).status, 403);
    assert.equal((await trigger(bob, request(own(bob, 'x/walk.mp4')))).status, 202);
  });
});

describe('input locations', () => {
  it('refuses at admission, naming the rule, every input outside the upload locations', async () => {
    const alice = newCaller();
    const before = await state();
    const cases: Array<[string, RegExp]> = [
      ['file:///etc/passwd', /file:\/\/ URIs and paths are accepted only with AUTH_MODE=local/],
      ['/etc/passwd', /AUTH_MODE=local/],
      [`file:///srv/uploads/${callerScope(alice)}/walk.mp4`, /AUTH_MODE=local/],
      ['gs://splatflow-secrets/keys/walk.mp4', /under an upload location/],
      [`gs://splatflow-results/requests/${callerScope(alice)}/scene.spz`, /under an upload location/],
      [`gs://splatflow-uploads/elsewhere/${callerScope(alice)}/walk.mp4`, /under an upload location/],
      [`gs://splatflow-uploads/${callerScope(alice)}/walk.mp4`, /under an upload location/],
      [`gs://splatflow-uploads/uploadsx/${callerScope(alice)}/walk.mp4`, /under an upload location/],
    ];
    for (const [uri, rule] of cases) {
      for (const answer of [
        await trigger(alice, request(uri)),
        await post('preprocessVideo', '/preprocess-video', alice, request(uri)),
      ]) {
        assert.equal(answer.status, 400, `${uri}: ${JSON.stringify(answer.body)}`);
        assert.equal(answer.body.error?.code, 'INPUT_NOT_ALLOWED', uri);
        assert.match(answer.body.error?.message ?? '', rule, uri);
      }
    }
    assert.deepEqual(await state(), before);
    // Every configured location admits the caller's own objects.
    assert.equal((await trigger(alice, request(own(alice, 'batch-1/walk.mp4', IMPORTS)))).status, 202);
  });
});

describe('bodies Firestore cannot store', () => {
  const deep = (levels: number) => `${'{"a":'.repeat(levels)}1${'}'.repeat(levels)}`;
  const raw = (email: string, params: string, headers: Record<string, string> = {}) =>
    auth(email).then((authorization) =>
      call<Body>(`${functions.url('trigger')}/trigger-reconstruction`, {
        method: 'POST',
        raw: `{"session_id":"deep","input":{"uri":${JSON.stringify(own(email, 'deep/walk.mp4'))}},"params":${params}}`,
        headers: { ...authorization, ...headers, 'content-type': 'application/json' },
      }),
    );

  it('answer 400 with the rule, before the rate limit or dedup count them, and change nothing', async () => {
    const alice = newCaller();
    const before = await state();
    const cases: Array<[string, string, string]> = [
      ['21 levels', deep(21), 'max_depth'],
      ['5000 levels', deep(5000), 'max_depth'],
      ['an empty key', '{"": 1}', 'empty_field_name'],
      ['a reserved name', '{"__x__": 1}', 'reserved_field_name'],
      ['an array in an array', '{"views": [[0, 1]]}', 'nested_array'],
      ['a lone surrogate', '{"s": "\\ud800"}', 'not_utf8'],
    ];
    // More than the rate limit (10 a minute), all with one Idempotency-Key.
    for (const [name, params, rule] of [...cases, ...cases]) {
      const answer = await raw(alice, params, { 'idempotency-key': 'deep-1' });
      assert.equal(answer.status, 400, `${name}: ${JSON.stringify(answer.body)}`);
      assert.equal(answer.body.error?.code, 'UNSTORABLE_VALUE', name);
      assert.equal(answer.body.error?.rule, rule, name);
      assert.match(answer.body.error?.message ?? '', /^body\.params/, name);
    }
    assert.deepEqual(await state(), before);
    // The params object itself is the first of Firestore's 20 levels.
    const fine = await raw(alice, deep(20), { 'idempotency-key': 'deep-1' });
    assert.equal(fine.status, 202, JSON.stringify(fine.body));
    assert.equal(fine.body.duplicate, false, 'the refused calls claimed no dedup key');
  });
});
