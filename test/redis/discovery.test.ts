/**
 * Memorystore discovery with the real CloudRedisClient against a local Memorystore API: the queue
 * function finds its password-protected Redis from REDIS_INSTANCE alone.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { discoverRedis } from '../../functions/redis/discovery.js';
import { startFirestore, type FirestoreEmulator } from '../../local/services/firestore-emulator.js';
import { serveFunctions, type ServedFunctions } from '../../local/services/functions.js';
import { call } from '../../local/json-http.js';
import { startMemorystoreFake, type MemorystoreFake } from '../support/memorystore-fake.js';
import { startRedis, type RedisServer } from '../../local/services/redis-server.js';

const INSTANCE = 'projects/splatflow-test/locations/europe-west4/instances/queue';
const TLS_INSTANCE = 'projects/splatflow-test/locations/europe-west4/instances/queue-tls';
const PASSWORD = 'memorystore-auth-string-for-tests';
const CA = '-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----';

let redis: RedisServer;
let firestore: FirestoreEmulator;
let memorystore: MemorystoreFake;
let functions: ServedFunctions;

before(async () => {
  [redis, firestore] = await Promise.all([startRedis({ password: PASSWORD }), startFirestore()]);
  memorystore = await startMemorystoreFake([
    { name: INSTANCE, host: '127.0.0.1', port: redis.port, authString: PASSWORD },
    { name: TLS_INSTANCE, host: '10.0.0.3', port: 6378, authString: PASSWORD, caPem: CA },
  ]);
  functions = await serveFunctions(['queue'], {
    REDIS_INSTANCE: INSTANCE,
    CLOUD_REDIS_EMULATOR_HOST: memorystore.host,
    FIRESTORE_EMULATOR_HOST: firestore.host,
    AUTO_DISPATCH: 'false',
  });
});
after(async () => {
  await functions.close();
  await Promise.all([redis.stop(), memorystore.stop()]);
  firestore.stop();
});

describe('Memorystore discovery', () => {
  it('the queue works on the instance found from REDIS_INSTANCE, AUTH string included', async () => {
    const queued = await call<{ request_id: string }>(`${functions.url('queue')}/enqueue`, {
      method: 'POST',
      body: { session_id: 'found', input: { uri: 'gs://splatflow-uploads/uploads/found.mp4' } },
    });
    assert.equal(queued.status, 201);
    assert.equal((await call(`${functions.url('queue')}/status/${queued.body.request_id}`)).status, 200);
    assert.ok(memorystore.requests.includes(`GET /v1/${INSTANCE}`));
    assert.ok(memorystore.requests.includes(`GET /v1/${INSTANCE}/authString`));
  });

  it('an instance with in-transit encryption gives a rediss:// URL and its CA', async () => {
    assert.deepEqual(await discoverRedis(TLS_INSTANCE, memorystore.host), {
      url: 'rediss://10.0.0.3:6378',
      password: PASSWORD,
      tlsCa: CA,
    });
  });

  it('an unknown instance is a clear error', async () => {
    await assert.rejects(
      discoverRedis('projects/splatflow-test/locations/europe-west4/instances/missing', memorystore.host),
      /not found/i,
    );
  });
});
