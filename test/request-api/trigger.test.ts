/**
 * `trigger`, `preprocessVideo` and `status` through the Functions Framework, on a real Redis,
 * the Firestore emulator, a local Workflows API and Google-style ID tokens verified against a
 * local JWKS. (Webhook delivery: webhooks.test.ts, in local mode, where a loopback receiver may
 * be allow-listed.)
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Firestore } from '@google-cloud/firestore';
import { callerScope } from '../../functions/request-api/scope.js';
import type { ServedFunctions } from '../../local/services/functions.js';
import { startGoogleModeStack, type GoogleModeStack } from '../support/google-mode-stack.js';
import { call } from '../../local/json-http.js';
import { until } from '../support/http.js';
import type { IdTokenIssuer } from '../support/id-tokens.js';
import { validV4Signature } from '../support/signing-key.js';
import type { WorkflowsFake } from '../support/workflows-fake.js';

const WEBHOOK_SECRET = 'webhook-secret-for-tests-0123456789';
const STATUS_URL = 'https://status.splatflow.test/status';

let functions: ServedFunctions;
let db: Firestore;
let key: GoogleModeStack['key'];
let workflows: WorkflowsFake;
let issuer: IdTokenIssuer;
let close: GoogleModeStack['close'];

before(async () => {
  ({ functions, db, key, workflows, issuer, close } = await startGoogleModeStack(
    ['trigger', 'preprocessVideo', 'status', 'queue'],
    {
      STATUS_URL,
      INPUT_LOCATIONS: 'gs://splatflow-uploads/uploads/',
      WEBHOOK_SECRET,
      WEBHOOK_ALLOW_HTTP: 'true',
      MAX_CONCURRENT_RECONSTRUCTIONS: '50',
    },
  ));
});
after(() => close());

type Body = Record<string, unknown> & {
  error?: { code: string; message: string };
  request_id?: string;
  callback_token?: string;
  status_url?: string;
};

let callers = 0;
/** A fresh caller per test, so rate-limit windows do not leak between tests. */
const newCaller = () => `caller-${++callers}@example.com`;

async function auth(email: string): Promise<Record<string, string>> {
  return { authorization: `Bearer ${await issuer.token(email)}` };
}

/** A trigger body; with `email`, its input is that caller's own upload. */
const body = (session = 'session-1', extra: Record<string, unknown> = {}, email?: string) => ({
  session_id: session,
  input: { uri: `gs://splatflow-uploads/uploads/${email ? `${callerScope(email)}/` : ''}${session}/video.mp4` },
  ...extra,
});

async function trigger(email: string, payload: unknown, headers: Record<string, string> = {}) {
  return call<Body>(`${functions.url('trigger')}/trigger-reconstruction`, {
    method: 'POST',
    body: payload,
    headers: { ...(await auth(email)), ...headers },
  });
}

const status = (token: string) =>
  call<
    Body & {
      status: string;
      stages: Array<Record<string, unknown>>;
      outputs?: Record<string, { uri: string; url: string }>;
    }
  >(`${functions.url('status')}/status?callback_token=${encodeURIComponent(token)}`);

const queueStats = async () => (await call<Record<string, unknown>>(`${functions.url('queue')}/queue`)).body;
const recordCount = async () => (await db.collection('requests').count().get()).data().count;

describe('bad input', () => {
  it('answers at least 30 malformed or hostile inputs with a clear 4xx, and changes nothing', async () => {
    const email = newCaller();
    const good = await auth(email);
    const url = `${functions.url('trigger')}/trigger-reconstruction`;
    const expired = await issuer.token(email, {}, { expiresIn: '-1m' });
    const cases: Array<{ name: string; init: Parameters<typeof call>[1]; url?: string; status: number; code: string }> =
      [
        { name: 'no token', init: { method: 'POST', body: body() }, status: 401, code: 'UNAUTHENTICATED' },
        {
          name: 'not a bearer token',
          init: { method: 'POST', body: body(), headers: { authorization: 'Basic dXNlcjpwYXNz' } },
          status: 401,
          code: 'UNAUTHENTICATED',
        },
        {
          name: 'garbage token',
          init: { method: 'POST', body: body(), headers: { authorization: 'Bearer not.a.jwt-at-all-really' } },
          status: 401,
          code: 'UNAUTHENTICATED',
        },
        {
          name: 'expired token',
          init: { method: 'POST', body: body(), headers: { authorization: `Bearer ${expired}` } },
          status: 401,
          code: 'UNAUTHENTICATED',
        },
        {
          name: 'token for another audience',
          init: {
            method: 'POST',
            body: body(),
            headers: { authorization: `Bearer ${await issuer.token(email, {}, { audience: 'https://other.test' })}` },
          },
          status: 401,
          code: 'UNAUTHENTICATED',
        },
        {
          name: 'token from another issuer',
          init: {
            method: 'POST',
            body: body(),
            headers: { authorization: `Bearer ${await issuer.token(email, {}, { issuer: 'https://evil.test' })}` },
          },
          status: 401,
          code: 'UNAUTHENTICATED',
        },
        {
          name: 'forged signature',
          init: {
            method: 'POST',
            body: body(),
            headers: { authorization: `Bearer ${await issuer.forgedToken(email)}` },
          },
          status: 401,
          code: 'UNAUTHENTICATED',
        },
        {
          name: 'unverified email',
          init: {
            method: 'POST',
            body: body(),
            headers: { authorization: `Bearer ${await issuer.token(email, { email_verified: false })}` },
          },
          status: 401,
          code: 'UNAUTHENTICATED',
        },
        {
          name: 'local-mode header in google mode',
          init: { method: 'POST', body: body(), headers: { 'x-splatflow-caller': email } },
          status: 401,
          code: 'UNAUTHENTICATED',
        },
        {
          name: 'malformed JSON',
          init: { method: 'POST', raw: '{"session_id": ', headers: { ...good, 'content-type': 'application/json' } },
          status: 400,
          code: 'MALFORMED_BODY',
        },
        {
          name: 'text body',
          init: { method: 'POST', raw: 'session_id=a', headers: { ...good, 'content-type': 'text/plain' } },
          status: 415,
          code: 'UNSUPPORTED_MEDIA_TYPE',
        },
        {
          name: 'form body',
          init: {
            method: 'POST',
            raw: 'session_id=a',
            headers: { ...good, 'content-type': 'application/x-www-form-urlencoded' },
          },
          status: 415,
          code: 'UNSUPPORTED_MEDIA_TYPE',
        },
        {
          name: 'huge body',
          init: { method: 'POST', body: body('s', { params: { blob: 'x'.repeat(70 * 1024) } }), headers: good },
          status: 413,
          code: 'BODY_TOO_LARGE',
        },
        {
          name: 'array body',
          init: { method: 'POST', body: [body()], headers: good },
          status: 400,
          code: 'INVALID_BODY',
        },
        {
          name: 'null body',
          init: { method: 'POST', raw: 'null', headers: { ...good, 'content-type': 'application/json' } },
          status: 400,
          code: 'MALFORMED_BODY',
        },
        {
          name: 'missing session_id',
          init: { method: 'POST', body: { input: { uri: 'gs://splatflow-uploads/a.mp4' } }, headers: good },
          status: 400,
          code: 'INVALID_BODY',
        },
        {
          name: 'missing input',
          init: { method: 'POST', body: { session_id: 'a' }, headers: good },
          status: 400,
          code: 'INVALID_BODY',
        },
        {
          name: 'session_id a number',
          init: { method: 'POST', body: body('a', { session_id: 42 }), headers: good },
          status: 400,
          code: 'INVALID_BODY',
        },
        {
          name: 'session_id with slashes',
          init: { method: 'POST', body: body('a', { session_id: '../../etc' }), headers: good },
          status: 400,
          code: 'INVALID_BODY',
        },
        {
          name: 'input a string',
          init: { method: 'POST', body: { session_id: 'a', input: 'gs://b/a.mp4' }, headers: good },
          status: 400,
          code: 'INVALID_BODY',
        },
        {
          name: 'uri not gs:// or a path',
          init: {
            method: 'POST',
            body: { session_id: 'a', input: { uri: 'http://169.254.169.254/computeMetadata' } },
            headers: good,
          },
          status: 400,
          code: 'INVALID_BODY',
        },
        {
          name: 'path traversal in uri',
          init: {
            method: 'POST',
            body: { session_id: 'a', input: { uri: 'gs://splatflow-uploads/uploads/../../secrets/key.json' } },
            headers: good,
          },
          status: 400,
          code: 'INVALID_BODY',
        },
        {
          name: 'local path traversal',
          init: {
            method: 'POST',
            body: { session_id: 'a', input: { uri: '/srv/uploads/../../etc/passwd' } },
            headers: good,
          },
          status: 400,
          code: 'INVALID_BODY',
        },
        {
          name: 'control characters in uri',
          init: {
            method: 'POST',
            body: { session_id: 'a', input: { uri: 'gs://splatflow-uploads/a\u0000.mp4' } },
            headers: good,
          },
          status: 400,
          code: 'INVALID_BODY',
        },
        {
          name: 'priority out of range',
          init: { method: 'POST', body: body('a', { priority: 99 }), headers: good },
          status: 400,
          code: 'INVALID_BODY',
        },
        {
          name: 'priority a string',
          init: { method: 'POST', body: body('a', { priority: 'high' }), headers: good },
          status: 400,
          code: 'INVALID_BODY',
        },
        {
          name: 'params an array',
          init: { method: 'POST', body: body('a', { params: [1, 2] }), headers: good },
          status: 400,
          code: 'INVALID_BODY',
        },
        {
          name: 'unknown field',
          init: { method: 'POST', body: body('a', { owner: 'admin@example.com' }), headers: good },
          status: 400,
          code: 'INVALID_BODY',
        },
        {
          name: 'webhook not a URL',
          init: { method: 'POST', body: body('a', { webhook_url: 'javascript:alert(1)' }), headers: good },
          status: 400,
          code: 'INVALID_BODY',
        },
        {
          name: 'webhook with credentials',
          init: {
            method: 'POST',
            body: body('a', { webhook_url: 'https://user:pw@hooks.example.com/x' }, email),
            headers: good,
          },
          status: 400,
          code: 'INVALID_BODY',
        },
        {
          name: 'bad idempotency key',
          init: {
            method: 'POST',
            body: body('a', {}, email),
            headers: { ...good, 'idempotency-key': 'has spaces in it' },
          },
          status: 400,
          code: 'INVALID_IDEMPOTENCY_KEY',
        },
        { name: 'GET on trigger', init: { method: 'GET', headers: good }, status: 405, code: 'METHOD_NOT_ALLOWED' },
        {
          name: 'unknown path',
          url: `${functions.url('trigger')}/admin`,
          init: { method: 'POST', body: body(), headers: good },
          status: 404,
          code: 'UNKNOWN_ROUTE',
        },
        {
          name: 'status without token',
          url: `${functions.url('status')}/status`,
          init: {},
          status: 400,
          code: 'INVALID_QUERY',
        },
        {
          name: 'status with a short token',
          url: `${functions.url('status')}/status?callback_token=abc`,
          init: {},
          status: 400,
          code: 'INVALID_TOKEN',
        },
        {
          name: 'status with an unknown token',
          url: `${functions.url('status')}/status?callback_token=${'A'.repeat(43)}`,
          init: {},
          status: 404,
          code: 'NOT_FOUND',
        },
        {
          name: 'status with two tokens',
          url: `${functions.url('status')}/status?callback_token=${'A'.repeat(43)}&callback_token=${'B'.repeat(43)}`,
          init: {},
          status: 400,
          code: 'INVALID_QUERY',
        },
        {
          name: 'status with an extra parameter',
          url: `${functions.url('status')}/status?callback_token=${'A'.repeat(43)}&debug=1`,
          init: {},
          status: 400,
          code: 'INVALID_QUERY',
        },
        {
          name: 'POST on status',
          url: `${functions.url('status')}/status`,
          init: { method: 'POST', body: {} },
          status: 405,
          code: 'METHOD_NOT_ALLOWED',
        },
      ];
    assert.ok(cases.length >= 30, `${cases.length} cases`);
    const statsBefore = await queueStats();
    const recordsBefore = await recordCount();
    for (const test of cases) {
      const response = await call<Body>(test.url ?? url, test.init);
      assert.equal(response.status, test.status, `${test.name}: ${JSON.stringify(response.body)}`);
      assert.equal(response.body.error?.code, test.code, test.name);
      assert.ok((response.body.error?.message ?? '').length > 5, `${test.name} explains itself`);
    }
    assert.deepEqual(await queueStats(), {
      ...statsBefore,
      oldest_queued_age_seconds: (await queueStats()).oldest_queued_age_seconds,
    });
    assert.equal(await recordCount(), recordsBefore);
    assert.equal(workflows.createCalls(), 0);
  });
});

describe('POST /trigger-reconstruction', () => {
  it('records, queues and starts a workflow with the request as its argument', async () => {
    const email = newCaller();
    const response = await trigger(email, body('walkthrough', { params: { preset: 'preview' }, priority: 7 }, email));
    assert.equal(response.status, 202);
    const { request_id, callback_token, status_url } = response.body;
    assert.match(request_id!, /^[0-9a-f-]{36}$/);
    assert.match(callback_token!, /^[A-Za-z0-9_-]{43}$/, '256 random bits, base64url');
    assert.equal(status_url, `${STATUS_URL}?callback_token=${callback_token}`);

    const record = (await db.collection('requests').doc(request_id!).get()).data()!;
    assert.equal(record.owner, email);
    assert.equal(record.origin, 'trigger');
    assert.notEqual(record.token_hash, callback_token, 'only the hash is stored');
    assert.ok(!JSON.stringify(record).includes(callback_token!));

    const execution = await until('the execution', () =>
      workflows.executions.find((candidate) => candidate.argument.request_id === request_id),
    );
    assert.deepEqual(execution.argument, {
      request_id,
      input_uri: `gs://splatflow-uploads/uploads/${callerScope(email)}/walkthrough/video.mp4`,
      output_prefix: `gs://splatflow-results/requests/${request_id}/`,
      params: { preset: 'preview' },
    });
    assert.match(
      execution.name,
      /^projects\/splatflow-test\/locations\/us-central1\/workflows\/reconstruct\/executions\//,
    );
    const started = await until('the record to show the execution', async () => {
      const data = (await db.collection('requests').doc(request_id!).get()).data()!;
      return data.execution ? data : undefined;
    });
    assert.equal(started.status, 'PROCESSING');
    assert.equal(started.execution, execution.name);
  });

  it('100 concurrent calls from one caller: exactly 10 accepted, the rest 429 with Retry-After; others unaffected', async () => {
    const email = newCaller();
    const headers = await auth(email);
    const url = `${functions.url('trigger')}/trigger-reconstruction`;
    const responses = await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        call<Body>(url, { method: 'POST', body: body(`burst-${i}`, {}, email), headers }),
      ),
    );
    const accepted = responses.filter((response) => response.status === 202);
    const limited = responses.filter((response) => response.status === 429);
    assert.equal(accepted.length, 10);
    assert.equal(limited.length, 90);
    for (const response of limited) {
      assert.equal(response.body.error?.code, 'RATE_LIMITED');
      const retryAfter = Number(response.headers.get('retry-after'));
      assert.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After ${retryAfter}`);
    }
    assert.equal(new Set(accepted.map((response) => response.body.request_id)).size, 10);
    const otherCaller = newCaller();
    const other = await trigger(otherCaller, body('other-caller', {}, otherCaller));
    assert.equal(other.status, 202);
  });

  it('50 identical concurrent calls all get the one request; retries do not use up the rate limit', async () => {
    const email = newCaller();
    const headers = await auth(email);
    const url = `${functions.url('trigger')}/trigger-reconstruction`;
    const responses = await Promise.all(
      Array.from({ length: 50 }, () => call<Body>(url, { method: 'POST', body: body('retried', {}, email), headers })),
    );
    assert.deepEqual([...new Set(responses.map((response) => response.status))], [202]);
    assert.equal(new Set(responses.map((response) => response.body.request_id)).size, 1);
    assert.equal(new Set(responses.map((response) => response.body.callback_token)).size, 1);
    assert.equal(responses.filter((response) => response.body.duplicate === false).length, 1);
    assert.equal((await db.collection('requests').where('owner', '==', email).get()).size, 1);
    // Only the first counted: 9 more distinct requests fit this minute's 10, the next does not.
    const more = await Promise.all(
      Array.from({ length: 10 }, (_, i) => trigger(email, body(`after-retries-${i}`, {}, email))),
    );
    assert.equal(more.filter((response) => response.status === 202).length, 9);
    assert.equal(more.filter((response) => response.status === 429).length, 1);
  });

  it('the same body twice answers the same request and token; another caller gets its own', async () => {
    const email = newCaller();
    const first = await trigger(email, body('repeat', { params: { a: 1, b: { c: 2, d: 3 } } }, email));
    // Same content, keys in another order.
    const second = await trigger(email, {
      params: { b: { d: 3, c: 2 }, a: 1 },
      input: body('repeat', {}, email).input,
      session_id: 'repeat',
    });
    assert.equal(first.status, 202);
    assert.equal(second.status, 202);
    assert.equal(second.body.request_id, first.body.request_id);
    assert.equal(second.body.callback_token, first.body.callback_token);
    assert.equal(second.body.duplicate, true);
    const strangerEmail = newCaller();
    const stranger = await trigger(
      strangerEmail,
      body('repeat', { params: { a: 1, b: { c: 2, d: 3 } } }, strangerEmail),
    );
    assert.notEqual(stranger.body.request_id, first.body.request_id);
    const records = await db.collection('requests').where('session_id', '==', 'repeat').get();
    assert.equal(records.size, 2);
  });

  it('an Idempotency-Key answers the first request even for a different body; concurrent repeats make one request', async () => {
    const email = newCaller();
    const headers = { 'idempotency-key': 'order-2026-11-24-0001' };
    const answers = await Promise.all(
      Array.from({ length: 5 }, (_, i) => trigger(email, body(`keyed-${i}`, {}, email), headers)),
    );
    assert.ok(answers.every((answer) => answer.status === 202));
    assert.equal(new Set(answers.map((answer) => answer.body.request_id)).size, 1);
    assert.equal(answers.filter((answer) => answer.body.duplicate === false).length, 1);
    const id = answers[0]!.body.request_id!;
    const snapshot = await db.collection('requests').doc(id).get();
    assert.ok(snapshot.exists);
    const owned = await db.collection('requests').where('owner', '==', email).get();
    assert.equal(owned.size, 1);
  });
});

describe('POST /preprocess-video', () => {
  it('starts a request that stops after sparse reconstruction and answers its job id and status', async () => {
    const email = newCaller();
    const response = await call<Body>(`${functions.url('preprocessVideo')}/preprocess-video`, {
      method: 'POST',
      body: body('prep', {}, email),
      headers: await auth(email),
    });
    assert.equal(response.status, 202);
    assert.equal(response.body.job_id, response.body.request_id);
    assert.equal(response.body.status, 'QUEUED');
    const execution = await until('the execution', () =>
      workflows.executions.find((candidate) => candidate.argument.request_id === response.body.request_id),
    );
    assert.deepEqual(execution.argument.params, { stop_after: 'sfm' });
  });
});

describe('GET /status', () => {
  it('reports stages with timings, then signed URLs of the outputs', async () => {
    const email = newCaller();
    const started = await trigger(email, body('full-run', {}, email));
    assert.equal(started.status, 202);
    const id = started.body.request_id!;
    const token = started.body.callback_token!;
    await until('dispatch', async () => ((await status(token)).body.status === 'PROCESSING' ? true : undefined));

    const report = (update: Record<string, unknown>) =>
      call<Body>(`${functions.url('queue')}/status/${id}`, { method: 'PUT', body: update });
    assert.equal((await report({ status: 'PROCESSING', stage: 'frames', progress: 0.5 })).status, 200);
    await sleep(20);
    assert.equal((await report({ status: 'PROCESSING', stage: 'filter', progress: 0.6 })).status, 200);

    const midway = await status(token);
    assert.equal(midway.status, 200);
    assert.equal(midway.body.stage, 'filter');
    assert.equal(midway.body.progress, 0.6);
    assert.deepEqual(
      midway.body.stages.map((stage) => stage.name),
      ['frames', 'filter'],
    );
    assert.ok((midway.body.stages[0]!.seconds as number) > 0, 'a finished stage has a duration');
    assert.equal(midway.body.outputs, undefined);

    const outputs = {
      splat: 'gs://splatflow-results/requests/x/scene.spz',
      mesh: 'gs://splatflow-results/requests/x/mesh.glb',
      psnr: 27.5,
    };
    assert.equal((await report({ status: 'COMPLETED', stage: 'export', progress: 1, outputs })).status, 200);
    const done = await status(token);
    assert.equal(done.body.status, 'COMPLETED');
    const splat = done.body.outputs!.splat!;
    assert.equal(splat.uri, outputs.splat);
    const signed = new URL(splat.url);
    assert.equal(signed.hostname, 'storage.googleapis.com');
    assert.equal(signed.searchParams.get('X-Goog-Algorithm'), 'GOOG4-RSA-SHA256');
    assert.match(signed.searchParams.get('X-Goog-Signature') ?? '', /^[0-9a-f]{512}$/);
    assert.equal(signed.searchParams.get('X-Goog-Expires'), '3600');
    assert.equal(`gs:/${signed.pathname}`, outputs.splat, 'the URL names the output object');
    assert.ok(validV4Signature(splat.url, key.file), 'signed by the configured key');
    assert.ok(!validV4Signature(splat.url.replace('scene.spz', 'other.spz'), key.file), 'for that object only');
    assert.equal(done.body.outputs!.psnr, 27.5);
  });

  it("links a completed request's viewer page, with signed URLs of the files it reads in the fragment", async () => {
    const finish = async (session: string, stages: string[]) => {
      const email = newCaller();
      const started = await trigger(email, body(session, {}, email));
      const { request_id: id, callback_token: token } = started.body as { request_id: string; callback_token: string };
      await until('dispatch', async () => ((await status(token)).body.status === 'PROCESSING' ? true : undefined));
      // The workflow's outputs on COMPLETED (workflows/reconstruct.yaml, step finish).
      const outputs = { request_prefix: `gs://splatflow-results/requests/${id}/`, stop_after: 'export', stages };
      const put = await call(`${functions.url('queue')}/status/${id}`, {
        method: 'PUT',
        body: { status: 'COMPLETED', stage: stages.at(-1), progress: 1, outputs },
      });
      assert.equal(put.status, 200);
      return { id, answer: (await status(token)).body as { viewer_url?: string } };
    };
    const { id, answer } = await finish('viewer-run', ['frames', 'filter', 'sfm', 'train', 'mesh', 'export']);
    const page = new URL(answer.viewer_url!);
    assert.equal(`gs:/${page.pathname}`, `gs://splatflow-results/requests/${id}/export/viewer/index.html`);
    assert.ok(validV4Signature(page.href.replace(page.hash, ''), key.file), 'the page URL is signed');
    const files = new URLSearchParams(page.hash.slice(1));
    assert.deepEqual([...files.keys()], ['export/scene.spz', 'mesh/mesh.glb']);
    for (const [path, url] of files) {
      assert.equal(`gs:/${new URL(url).pathname}`, `gs://splatflow-results/requests/${id}/${path}`);
      assert.ok(validV4Signature(url, key.file), `${path} is signed`);
    }

    // A request that stopped before export has no viewer; one without a mesh links only the splat.
    assert.equal((await finish('no-export', ['frames', 'filter', 'sfm'])).answer.viewer_url, undefined);
    const noMesh = new URL(
      (await finish('no-mesh', ['frames', 'filter', 'sfm', 'train', 'export'])).answer.viewer_url!,
    );
    assert.deepEqual([...new URLSearchParams(noMesh.hash.slice(1)).keys()], ['export/scene.spz']);
  });
});
