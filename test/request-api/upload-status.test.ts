/**
 * Uploads an uploader can follow, through the local stack as a user meets it: an object written to the
 * local bucket emits the finalize CloudEvent to the real `onUpload` (Functions Framework), and the status
 * object beside the upload, read with the real `@google-cloud/storage` client from the local storage API,
 * follows the request: QUEUED → each stage → COMPLETED with where the results and the viewer are, and a
 * status URL whose signed links download them. Stage jobs are the contract-honouring test program, run
 * by the real workflow; dispatch is called by hand so the QUEUED state can be seen.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Storage } from '@google-cloud/storage';
import { createLogger } from '../../lib/log.js';
import { testStageDefinitions } from '../support/stage-definitions.js';
import { startStack, type Stack } from '../../local/stack.js';
import { StatusObjects, type UploadStatus } from '../../functions/uploads/status-object.js';
import { newRecord, type RequestRecord } from '../../functions/records/request-record.js';
import { call } from '../../local/json-http.js';

const BUCKET = 'splatflow-local';
const log = createLogger({ level: 'ERROR' });

let data: string;
let stack: Stack;
let storage: Storage;

/** This stack's UPLOAD_MAX_BYTES: small, so that a test can send more. */
const MAX_BYTES = 4096;

before(async () => {
  data = await mkdtemp(join(tmpdir(), 'splatflow-upload-status-'));
  const definitions = testStageDefinitions();

  stack = await startStack({
    data,
    bucket: BUCKET,
    apiPort: 0,
    log,
    definitions,
    env: { AUTO_DISPATCH: 'false', INPUT_LOCATIONS: `gs://${BUCKET}/uploads/`, UPLOAD_MAX_BYTES: String(MAX_BYTES) },
  });
  storage = new Storage({ projectId: 'local-project', apiEndpoint: stack.urls.api });
});
after(async () => {
  await stack?.stop();
  await rm(data, { recursive: true, force: true });
});

async function statusOf(upload: string): Promise<UploadStatus | undefined> {
  const file = storage.bucket(BUCKET).file(`status/${upload}.json`);
  const [exists] = await file.exists();
  if (!exists) return undefined;
  const [body] = await file.download();
  return JSON.parse(body.toString('utf8')) as UploadStatus;
}

describe('an upload the uploader can follow', () => {
  it('has a status object from QUEUED through its stages to COMPLETED with the results and the viewer', async () => {
    const upload = 'uploads/kitchen/walk.mp4';
    await stack.bucket.write(
      BUCKET,
      upload,
      Buffer.from('a video, as far as the upload handler can tell'),
      'video/mp4',
    );

    const queued = await statusOf(upload);
    assert.equal(queued?.status, 'QUEUED', 'written before the upload event is acknowledged');
    assert.equal(queued.upload.name, upload);
    assert.match(queued.status_url ?? '', /^http:\/\/127\.0\.0\.1:\d+\/status\?callback_token=[A-Za-z0-9_-]{43}$/);

    const dispatched = await call<{ started: unknown[] }>(`${stack.urls.functions.dispatch}/`, { method: 'POST' });
    assert.equal(dispatched.body.started.length, 1);
    const seen: string[] = [];
    let status = queued;
    const deadline = Date.now() + 120_000;
    while (Date.now() < deadline && !['COMPLETED', 'FAILED'].includes(status.status)) {
      await sleep(50);
      status = (await statusOf(upload))!;
      const step = `${status.status}${status.stage ? ` ${status.stage}` : ''}`;
      if (seen.at(-1) !== step) seen.push(step);
    }
    assert.equal(status.status, 'COMPLETED', JSON.stringify(status));
    // Polling sees most steps; the stages it sees come in the workflow's order (depth runs beside sfm) and end at export.
    const order = ['frames', 'filter', 'sfm', 'train', 'mesh', 'export'];
    const stages = seen
      .filter((step) => step.startsWith('PROCESSING '))
      .map((step) => step.split(' ')[1]!)
      .filter((stage) => order.includes(stage));
    assert.ok(stages.length > 0, `saw stages: ${seen.join(', ')}`);
    assert.deepEqual(
      stages,
      [...stages].sort((a, b) => order.indexOf(a) - order.indexOf(b)),
    );
    assert.equal(status.stage, 'export');
    assert.equal(status.progress, 1);

    const folder = `gs://${BUCKET}/requests/${status.request_id}/`;
    assert.equal(status.results?.folder, folder);
    assert.equal(status.results?.viewer, `${folder}export/viewer/index.html`);
    assert.equal(status.results?.files.splat_spz, `${folder}export/scene.spz`);
    assert.equal(status.status_url, queued.status_url, 'the token stays the one the first write made');

    // The status URL answers the same request, with signed links that download the results.
    const answer = await call<{ request_id: string; files: Record<string, { url: string }> }>(status.status_url!);
    assert.equal(answer.body.request_id, status.request_id);
    const report = await fetch(answer.body.files.report!.url);
    assert.equal(report.status, 200);
    assert.equal(await report.text(), `export/report.json of ${status.request_id}\n`);
    const tampered = answer.body.files.report!.url.replace('report.json', 'scene.spz');
    assert.equal((await fetch(tampered)).status, 403, 'a signed link opens only its own object');
  });

  it('has a status object with the reason when the upload is refused', async () => {
    const upload = 'uploads/kitchen/notes.txt';
    await stack.bucket.write(BUCKET, upload, Buffer.from('not a video'), 'text/plain');
    const status = await statusOf(upload);
    assert.equal(status?.status, 'REJECTED');
    assert.equal(status.error?.code, 'UPLOAD_REJECTED');
    assert.match(status.error?.message ?? '', /unsupported file type "\.txt": expected a video or an image set/);
    assert.equal(status.status_url, undefined);
  });

  it('refuses a webhook in the metadata by the trigger rules, and says so in the status object', async () => {
    const upload = 'uploads/kitchen/hooked.mp4';
    // This stack has no WEBHOOK_SECRET: webhooks are off, as a trigger body's would be refused.
    await stack.bucket.write(BUCKET, upload, Buffer.from('video'), {
      contentType: 'video/mp4',
      metadata: { 'webhook-url': 'https://hooks.example.com/done' },
    });
    const status = await statusOf(upload);
    assert.equal(status?.status, 'REJECTED');
    assert.equal(status.error?.message, 'metadata webhook-url: webhooks are not configured on this service');
  });

  it('follows an upload made through a signed upload URL (POST /uploads), as a client without storage access does', async () => {
    const answer = await call<{ uri: string; upload_url: string; method: string; headers: Record<string, string> }>(
      `${stack.urls.functions.uploads}/uploads`,
      {
        method: 'POST',
        headers: { 'x-splatflow-caller': 'phone@example.com' },
        body: { session_id: 'garden', file_name: 'orbit.mp4' },
      },
    );
    assert.equal(answer.status, 201, JSON.stringify(answer.body));
    const { upload_url: url, headers } = answer.body;
    const put = (body: string | Uint8Array, sent = headers, target = url) =>
      fetch(target, { method: 'PUT', body, headers: sent }).then(async (response) => {
        await response.arrayBuffer();
        return response.status;
      });
    // Too large for the signed range (this stack's UPLOAD_MAX_BYTES), or without the signed headers: nothing stored.
    assert.equal(await put(new Uint8Array(MAX_BYTES + 1)), 400, 'over the signed length range');
    assert.equal(await put('a video', { 'content-type': 'video/mp4' }), 403, 'without the signed conditions');
    assert.equal(await put('a video', { ...headers, 'content-type': 'text/html' }), 403, 'another content type');
    assert.equal(
      await put('a video', { ...headers, 'x-goog-content-length-range': '1,99999999999' }),
      403,
      'a wider range',
    );
    const name = answer.body.uri.replace(`gs://${BUCKET}/`, '');
    assert.equal(await stack.bucket.describe(BUCKET, name), undefined, 'no refused PUT stored anything');

    assert.equal(await put('a video'), 200);
    const status = await statusOf(name);
    assert.equal(status?.status, 'QUEUED');
    assert.equal(status.upload.name, name);
    const first = status.request_id;
    // The URL is spent: a second PUT (another video, or the same) makes no new generation, starts no request.
    assert.equal(await put('another video'), 412, 'the object exists: x-goog-if-generation-match: 0');
    assert.equal((await stack.bucket.describe(BUCKET, name))?.size, String('a video'.length));
    assert.equal((await statusOf(name))?.request_id, first);
    assert.equal(await put('x', headers, url.replace('orbit.mp4', 'other.mp4')), 403, 'the signature names one object');
  });

  it('never lets an older state or upload replace a newer one, even when writers race', async () => {
    const objects = new StatusObjects(
      storage,
      { prefix: 'status/', statusUrl: 'http://status.invalid/status', outputPrefix: `gs://${BUCKET}/requests/` },
      log,
    );
    const upload = { bucket: BUCKET, name: 'uploads/race/clip.mp4', generation: '2000' };
    const base = newRecord({ owner: 'x', origin: 'upload', session_id: 'race', input: { uri: 'gs://b/o' }, upload });
    const at = (record: RequestRecord, status: RequestRecord['status'], second: number): RequestRecord => ({
      ...record,
      status,
      updated_at: `2026-12-01T10:00:${String(second).padStart(2, '0')}.000Z`,
    });
    // Ten writers at once, each a later state than the one before: the object ends at the latest.
    await Promise.all(Array.from({ length: 10 }, (_, i) => objects.written(at(base, 'PROCESSING', 10 + i))));
    assert.equal((await statusOf(upload.name))?.updated_at, '2026-12-01T10:00:19.000Z');
    await objects.written(at(base, 'COMPLETED', 30));
    await objects.written(at(base, 'PROCESSING', 40));
    assert.equal((await statusOf(upload.name))?.status, 'COMPLETED', 'a finished request stays finished');
    // A re-upload of the same name (a newer generation) owns the object; the old request no longer writes it.
    await objects.written(at({ ...base, upload: { ...upload, generation: '3000' } }, 'QUEUED', 1));
    await objects.written(at(base, 'COMPLETED', 50));
    const latest = await statusOf(upload.name);
    assert.deepEqual([latest?.upload.generation, latest?.status], ['3000', 'QUEUED']);
  });
});
