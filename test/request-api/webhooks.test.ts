/**
 * Webhooks through the functions, in local mode with one loopback receiver allow-listed
 * (WEBHOOK_ALLOW_HOSTS): the signed delivery with retries, and every non-public host refused at
 * admission, the allow-list notwithstanding. Every host here is refused before any DNS lookup.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { Firestore } from '@google-cloud/firestore';
import { startFirestore, type FirestoreEmulator } from '../../local/services/firestore-emulator.js';
import { serveFunctions, type ServedFunctions } from '../../local/services/functions.js';
import { call } from '../../local/json-http.js';
import { until } from '../support/http.js';
import { startRedis, type RedisServer } from '../../local/services/redis-server.js';
import { startWorkflowsFake, type WorkflowsFake } from '../support/workflows-fake.js';

const WEBHOOK_SECRET = 'webhook-secret-for-tests-0123456789';
const CALLER = { 'x-splatflow-caller': 'hooks@example.com' };

let redis: RedisServer;
let firestore: FirestoreEmulator;
let workflows: WorkflowsFake;
let functions: ServedFunctions;
let db: Firestore;
let receiver: Server;
let port: number;
const received: Array<{ headers: Record<string, string | string[] | undefined>; body: string }> = [];
let receiverFailures = 0;

before(async () => {
  [redis, firestore, workflows] = await Promise.all([startRedis(), startFirestore(), startWorkflowsFake()]);
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      if (receiverFailures > 0) {
        receiverFailures--;
        res.writeHead(503).end();
        return;
      }
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  port = (receiver.address() as { port: number }).port;
  functions = await serveFunctions(['trigger', 'queue'], {
    REDIS_URL: redis.url,
    FIRESTORE_EMULATOR_HOST: firestore.host,
    WORKFLOWS_EMULATOR_HOST: workflows.host,
    GOOGLE_CLOUD_PROJECT: 'splatflow-test',
    AUTH_MODE: 'local',
    OUTPUT_PREFIX: 'gs://splatflow-results/requests/',
    WEBHOOK_SECRET,
    WEBHOOK_ALLOW_HTTP: 'true',
    WEBHOOK_ALLOW_HOSTS: `127.0.0.1:${port}`,
    RATE_LIMIT_PER_MINUTE: '1000',
  });
  db = new Firestore({ projectId: 'splatflow-test' });
});
after(async () => {
  await functions.close();
  await db.terminate();
  receiver.closeAllConnections();
  await new Promise((resolve) => receiver.close(resolve));
  await Promise.all([redis.stop(), workflows.stop()]);
  firestore.stop();
});

type Body = Record<string, unknown> & { error?: { code: string; message: string }; request_id?: string };

const trigger = (webhook_url: string, session = 'hooked') =>
  call<Body>(`${functions.url('trigger')}/trigger-reconstruction`, {
    method: 'POST',
    headers: CALLER,
    body: { session_id: session, input: { uri: '/srv/splatflow/uploads/walk.mp4' }, webhook_url },
  });

describe('webhook_url at admission', () => {
  it('refuses loopback, private, metadata and internal hosts in every spelling, and records nothing', async () => {
    const records = async () => (await db.collection('requests').count().get()).data().count;
    const before = { records: await records(), workflows: workflows.createCalls() };
    const hosts = [
      `http://127.0.0.1:${port + 1}/hook`, // the receiver's neighbour: not on the allow-list
      'http://127.0.0.1/hook',
      'https://10.0.0.1/hook',
      'http://169.254.169.254/computeMetadata/v1/instance/service-accounts/default/token',
      'http://metadata.google.internal/computeMetadata/v1/',
      'http://[::1]/hook',
      `http://[::1]:${port}/hook`,
      'http://[::ffff:127.0.0.1]/hook',
      'http://localhost:6379/',
      `http://localhost:${port}/hook`,
      'http://0x7f000001/hook',
      `http://0x7f000001:${port + 1}/hook`,
      'http://2130706433/hook',
      'http://172.16.0.10/hook',
      'http://192.168.0.1/hook',
      'http://100.64.0.1/hook',
      'http://[fd00::1]/hook',
      'http://[fe80::1]/hook',
      'http://224.0.0.1/hook',
      'http://0.0.0.0/hook',
      'http://redis-internal/hook',
      'http://memorystore.internal/hook',
    ];
    for (const url of hosts) {
      const answer = await trigger(url);
      assert.equal(answer.status, 400, `${url}: ${JSON.stringify(answer.body)}`);
      assert.equal(answer.body.error?.code, 'WEBHOOK_HOST_NOT_ALLOWED', url);
    }
    assert.deepEqual({ records: await records(), workflows: workflows.createCalls() }, before);
  });
});

describe('webhook delivery', () => {
  it('POSTs the signed final status to the allow-listed receiver, retrying a failure', async () => {
    receiverFailures = 1;
    const started = await trigger(`http://127.0.0.1:${port}/hook`, 'delivered');
    assert.equal(started.status, 202, JSON.stringify(started.body));
    const id = started.body.request_id!;
    const report = (update: Record<string, unknown>) =>
      call<Body>(`${functions.url('queue')}/status/${id}`, { method: 'PUT', body: update });
    await until('dispatch', async () =>
      (await report({ status: 'PROCESSING', stage: 'frames' })).status === 200 ? true : undefined,
    );
    const outputs = { splat: 'gs://splatflow-results/requests/x/scene.spz', psnr: 27.5 };
    assert.equal((await report({ status: 'COMPLETED', stage: 'export', progress: 1, outputs })).status, 200);

    const delivery = await until('the webhook', () => received.find((hook) => hook.body.includes(id)));
    const payload = JSON.parse(delivery.body) as Record<string, unknown>;
    assert.equal(payload.status, 'COMPLETED');
    assert.deepEqual(payload.outputs, outputs);
    const [t, v1] = String(delivery.headers['x-splatflow-signature']).split(',');
    const timestamp = t!.replace('t=', '');
    const expected = createHmac('sha256', WEBHOOK_SECRET).update(`${timestamp}.${delivery.body}`).digest('hex');
    assert.equal(v1, `v1=${expected}`);
    assert.equal(receiverFailures, 0, 'the failed first delivery was retried');
  });
});
