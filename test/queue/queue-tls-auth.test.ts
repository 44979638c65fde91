import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { startFirestore, type FirestoreEmulator } from '../support/firestore-emulator.js';
import { serveFunctions, type ServedFunctions } from '../support/functions.js';
import { call } from '../support/http.js';
import { startRedis, type RedisServer } from '../support/redis-server.js';

// Memorystore in production: in-transit TLS with its own CA, and an AUTH string.
const password = 'auth-string-for-tests';
let dir: string;
let redis: RedisServer;
let firestore: FirestoreEmulator;
let functions: ServedFunctions;

function makeCertificates(folder: string): { caFile: string; certFile: string; keyFile: string } {
  const file = (name: string) => join(folder, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'ignore' });
  openssl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '1',
    '-subj',
    '/CN=test-ca',
    '-keyout',
    file('ca.key'),
    '-out',
    file('ca.pem'),
  );
  openssl(
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-subj',
    '/CN=127.0.0.1',
    '-keyout',
    file('server.key'),
    '-out',
    file('server.csr'),
  );
  writeFileSync(file('san.cnf'), 'subjectAltName=IP:127.0.0.1\n');
  openssl(
    'x509',
    '-req',
    '-in',
    file('server.csr'),
    '-CA',
    file('ca.pem'),
    '-CAkey',
    file('ca.key'),
    '-CAcreateserial',
    '-days',
    '1',
    '-extfile',
    file('san.cnf'),
    '-out',
    file('server.pem'),
  );
  return { caFile: file('ca.pem'), certFile: file('server.pem'), keyFile: file('server.key') };
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'splatflow-tls-'));
  const tls = makeCertificates(dir);
  redis = await startRedis({ password, tls });
  assert.match(redis.url, /^rediss:\/\//);
  firestore = await startFirestore();
  functions = await serveFunctions(['queue'], {
    FIRESTORE_EMULATOR_HOST: firestore.host,
    AUTO_DISPATCH: 'false',
    // The password comes separately (Secret Manager in the cloud), not in the URL.
    REDIS_URL: `rediss://127.0.0.1:${redis.port}`,
    REDIS_PASSWORD: password,
    REDIS_TLS_CA: readFileSync(tls.caFile, 'utf8'),
  });
});
after(async () => {
  await functions.close();
  await redis.stop();
  firestore.stop();
  rmSync(dir, { recursive: true, force: true });
});

it('works over TLS with an AUTH password', async () => {
  const base = functions.url('queue');
  const queued = await call<{ request_id: string }>(`${base}/enqueue`, {
    method: 'POST',
    body: { session_id: 's', input: { uri: 'gs://uploads-bucket/v.mp4' } },
  });
  assert.equal(queued.status, 201);
  const taken = await call<{ request_id: string; status: string }>(`${base}/next`);
  assert.equal(taken.body.request_id, queued.body.request_id);
  assert.equal(taken.body.status, 'PROCESSING');
});
