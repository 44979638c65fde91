/**
 * `onUpload` through the Functions Framework (binary-mode CloudEvents over HTTP, as Eventarc
 * delivers them), on a real Redis and the Firestore emulator.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Firestore } from '@google-cloud/firestore';
import type { RequestRecord } from '../../functions/records/request-record.js';
import { uploadRequestId } from '../../functions/request-api/upload.js';
import { startFirestore, type FirestoreEmulator } from '../../local/services/firestore-emulator.js';
import { serveFunctions, type ServedFunctions } from '../../local/services/functions.js';
import { call } from '../../local/json-http.js';
import { startRedis, type RedisServer } from '../../local/services/redis-server.js';
import { startFakeGcs, type FakeGcs } from '../support/fake-gcs.js';

let redis: RedisServer;
let firestore: FirestoreEmulator;
let functions: ServedFunctions;
let db: Firestore;
let gcs: FakeGcs;

before(async () => {
  [redis, firestore, gcs] = await Promise.all([startRedis(), startFirestore(), startFakeGcs()]);
  functions = await serveFunctions(['onUpload', 'queue'], {
    REDIS_URL: redis.url,
    FIRESTORE_EMULATOR_HOST: firestore.host,
    GOOGLE_CLOUD_PROJECT: 'splatflow-test',
    UPLOADS_PREFIX: 'uploads/',
    UPLOAD_MAX_BYTES: String(100 * 1024 * 1024),
    UPLOAD_MAX_DURATION_SECONDS: '300',
    AUTO_DISPATCH: 'false',
    // Status objects beside the uploads (test/request-api/upload-status.test.ts follows them) go here.
    STORAGE_EMULATOR_HOST: gcs.url,
  });
  db = new Firestore({ projectId: 'splatflow-test' });
});
after(async () => {
  await functions.close();
  await db.terminate();
  await redis.stop();
  await gcs.close();
  firestore.stop();
});

let eventIds = 0;
async function deliver(data: unknown, type = 'google.cloud.storage.object.v1.finalized', eventId?: string) {
  const response = await fetch(functions.url('onUpload'), {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'ce-specversion': '1.0',
      'ce-type': type,
      'ce-source': '//storage.googleapis.com/projects/_/buckets/splatflow-uploads',
      'ce-id': eventId ?? `event-${++eventIds}`,
      'ce-time': new Date().toISOString(),
    },
    body: JSON.stringify(data),
  });
  await response.arrayBuffer();
  return response.status;
}

const object = (name: string, extra: Record<string, unknown> = {}) => ({
  bucket: 'splatflow-uploads',
  name,
  generation: '1732400000000001',
  size: '2500000',
  contentType: 'video/mp4',
  ...extra,
});

const queueLength = async () =>
  (await call<{ queue_length: number }>(`${functions.url('queue')}/queue`)).body.queue_length;
const record = async (id: string) =>
  (await db.collection('requests').doc(id).get()).data() as RequestRecord | undefined;
const rejection = async (id: string) => (await db.collection('rejected_uploads').doc(id).get()).data();

describe('onUpload', () => {
  it('a video under the uploads prefix starts a request', async () => {
    const upload = object('uploads/kitchen/walk.MOV');
    assert.equal(await deliver(upload), 204);
    const id = uploadRequestId(upload);
    const stored = await record(id);
    assert.equal(stored?.status, 'QUEUED');
    assert.equal(stored?.origin, 'upload');
    assert.equal(stored?.session_id, 'kitchen');
    assert.deepEqual(stored?.input, { uri: 'gs://splatflow-uploads/uploads/kitchen/walk.MOV' });
    assert.deepEqual(stored?.params, { input_kind: 'video', frames: { max_duration_s: 300 } });
    const queued = await call<{ status: string }>(`${functions.url('queue')}/status/${id}`);
    assert.equal(queued.body.status, 'QUEUED');
  });

  it('an image-set zip or manifest starts a request', async () => {
    for (const name of ['uploads/garden/photos.zip', 'uploads/garden2/manifest.json']) {
      const upload = object(name, { contentType: 'application/zip' });
      assert.equal(await deliver(upload), 204);
      assert.equal((await record(uploadRequestId(upload)))?.params?.input_kind, 'images', name);
    }
  });

  it('the same event delivered 5 times concurrently makes one request', async () => {
    const upload = object('uploads/stairs/take1.mp4', { generation: '1732400000000777' });
    const before = await queueLength();
    const statuses = await Promise.all(Array.from({ length: 5 }, () => deliver(upload, undefined, 'same-event')));
    assert.deepEqual(statuses, [204, 204, 204, 204, 204]);
    assert.equal(await queueLength(), before + 1);
    const matching = await db.collection('requests').where('session_id', '==', 'stairs').get();
    assert.equal(matching.size, 1);
    // A new generation of the same name is a new upload.
    assert.equal(await deliver({ ...upload, generation: '1732400000000778' }), 204);
    assert.equal(await queueLength(), before + 2);
  });

  it('records anything else as rejected with a reason, and starts nothing', async () => {
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [object('uploads/notes/readme.txt', { contentType: 'text/plain' }), /unsupported file type "\.txt"/],
      [object('uploads/noext'), /unsupported file type "\(none\)"/],
      [object('elsewhere/video.mp4'), /not under uploads\//],
      [object('uploads/../secrets/video.mp4'), /"\.\."/],
      [object('uploads/a//video.mp4'), /empty/],
      [object('uploads/big/video.mp4', { size: String(200 * 1024 * 1024) }), /limit is 104857600/],
      [object('uploads/empty/video.mp4', { size: '0' }), /empty/],
    ];
    const before = await queueLength();
    for (const [upload, reason] of cases) {
      assert.equal(await deliver(upload), 204, String(upload.name));
      const id = uploadRequestId(upload as never);
      assert.match(String((await rejection(id))?.reason), reason, String(upload.name));
      assert.equal(await record(id), undefined);
    }
    assert.equal(await queueLength(), before);
  });

  it('acknowledges malformed events without starting work (redelivery cannot fix them)', async () => {
    const before = await queueLength();
    const count = async () => (await db.collection('requests').count().get()).data().count;
    const records = await count();
    for (const data of [
      {},
      { bucket: 'splatflow-uploads', name: 'uploads/x.mp4' },
      { bucket: 'splatflow-uploads', name: 'uploads/x.mp4', generation: 'abc' },
      { bucket: 'Bad Bucket!', name: 'uploads/x.mp4', generation: '1' },
      { bucket: 'splatflow-uploads', name: 42, generation: '1' },
    ]) {
      assert.equal(await deliver(data), 204);
    }
    assert.equal(await deliver(object('uploads/x.mp4'), 'google.cloud.storage.object.v1.deleted'), 204);
    assert.equal(await queueLength(), before);
    assert.equal(await count(), records);
  });
});
