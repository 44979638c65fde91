/**
 * The local API through real clients: the Workflows `ExecutionsClient` (REST fallback, pointed at
 * loopback, no credentials) creates and reads executions run by the interpreter; a media upload lands
 * in the local bucket and its finalize CloudEvent is parsed by the Functions Framework.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as functions from '@google-cloud/functions-framework';
import { getTestServer } from '@google-cloud/functions-framework/testing';
import { ExecutionsClient } from '@google-cloud/workflows';
import { PassThroughClient } from 'google-auth-library';
import { ARGUMENT_LIMIT_BYTES } from '../../functions/dispatch/argument.js';
import { createLogger } from '../../lib/log.js';
import { startLocalApi, type LocalApi } from '../../local/api.js';
import { LocalBucket } from '../../local/bucket.js';
import { Interpreter } from '../../local/workflows/interpreter.js';

process.env.METADATA_SERVER_DETECTION = 'none';
const log = createLogger({ level: 'ERROR' });
const PARENT = 'projects/local-project/locations/local-region/workflows/greet';

interface UploadEvent {
  type: string;
  source: string;
  subject: string;
  data: { bucket: string; name: string; size: string; generation: string; md5Hash: string; contentType: string };
}
const events: UploadEvent[] = [];
functions.cloudEvent<UploadEvent['data']>('recordUpload', (event: functions.CloudEvent<UploadEvent['data']>) => {
  events.push({ type: event.type, source: event.source, subject: event.subject ?? '', data: event.data! });
});

let api: LocalApi;
let client: ExecutionsClient;
let root: string;
let eventServer: ReturnType<typeof getTestServer>;

const greet = Interpreter.load(
  `
main:
  params: [args]
  steps:
    - check:
        switch:
          - condition: \${not("name" in args)}
            raise: {message: "name is required", code: "INVALID"}
    - wait:
        call: sys.sleep
        args: {seconds: 0.05}
    - r:
        return: '\${"hello " + args.name}'
`,
  { calls: {}, log },
);

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'splatflow-api-'));
  eventServer = getTestServer('recordUpload');
  await new Promise<void>((resolve) => eventServer.listen(0, '127.0.0.1', resolve));
  const eventUrl = `http://127.0.0.1:${(eventServer.address() as { port: number }).port}`;
  api = await startLocalApi({
    workflows: { greet: (argument) => greet.run(argument) },
    bucket: new LocalBucket({ root, uploadsPrefix: 'uploads/', eventUrl, log }),
    log,
  });
  const port = Number(new URL(api.url).port);
  client = new ExecutionsClient({
    fallback: true,
    protocol: 'http',
    apiEndpoint: '127.0.0.1',
    port,
    // google-gax's own copy of google-auth-library types the option; the client object is the same.
    authClient: new PassThroughClient() as never,
  });
});
after(async () => {
  await client.close();
  await api.close();
  eventServer.closeAllConnections();
  await new Promise((resolve) => eventServer.close(resolve));
  await rm(root, { recursive: true, force: true });
});

describe('Workflows Executions API', () => {
  it('creates an execution that runs the workflow, and reads it back SUCCEEDED with its result', async () => {
    const [created] = await client.createExecution({ parent: PARENT, execution: { argument: '{"name":"splat"}' } });
    assert.match(created.name ?? '', new RegExp(`^${PARENT}/executions/[0-9a-f-]{36}$`));
    assert.equal(created.state, 'ACTIVE');
    await api.settled(created.name!);
    const [read] = await client.getExecution({ name: created.name! });
    assert.equal(read.state, 'SUCCEEDED');
    assert.equal(JSON.parse(read.result!), 'hello splat');
    assert.ok(read.endTime);
  });

  it('an execution that raises is FAILED with the error as its payload', async () => {
    const [created] = await client.createExecution({ parent: PARENT, execution: { argument: '{}' } });
    await api.settled(created.name!);
    const [read] = await client.getExecution({ name: created.name! });
    assert.equal(read.state, 'FAILED');
    assert.deepEqual(JSON.parse(read.error!.payload!), { message: 'name is required', code: 'INVALID' });
  });

  it('answers 404 NOT_FOUND for an unknown workflow or execution, 400 INVALID_ARGUMENT for a bad argument', async () => {
    await assert.rejects(
      client.createExecution({ parent: PARENT.replace('greet', 'nope'), execution: {} }),
      (error: { code: number }) => error.code === 404,
    );
    await assert.rejects(
      client.getExecution({ name: `${PARENT}/executions/missing` }),
      (error: { code: number }) => error.code === 404,
    );
    await assert.rejects(
      client.createExecution({ parent: PARENT, execution: { argument: '{not json' } }),
      (error: { code: number; message: string }) => error.code === 400 && /not valid JSON/.test(error.message),
    );
  });

  it("refuses an argument over Workflows' 32 KB limit as Workflows does, and takes one at the limit", async () => {
    const at = JSON.stringify({ name: 'x'.repeat(ARGUMENT_LIMIT_BYTES - '{"name":""}'.length) });
    assert.equal(Buffer.byteLength(at), ARGUMENT_LIMIT_BYTES);
    const [created] = await client.createExecution({ parent: PARENT, execution: { argument: at } });
    await api.settled(created.name!);
    await assert.rejects(
      client.createExecution({ parent: PARENT, execution: { argument: `${at} ` } }),
      (error: { code: number; message: string }) => error.code === 400 && /INVALID_ARGUMENT/.test(error.message),
    );
  });

  it('lists executions by label and state, newest first, as executions.list filters them', async () => {
    const label = (value: string) => ({
      parent: PARENT,
      execution: { argument: '{"name":"l"}', labels: { request_id: value } },
    });
    const [first] = await client.createExecution(label('req-a'));
    const [second] = await client.createExecution(label('req-a'));
    await client.createExecution(label('req-b'));
    const list = async (filter: string) =>
      (await client.listExecutions({ parent: PARENT, filter }, { autoPaginate: false }))[0].map((e) => e.name);
    assert.deepEqual(await list('labels.request_id="req-a"'), [second.name, first.name]);
    await api.settled(first.name!);
    await api.settled(second.name!);
    assert.deepEqual(await list('labels.request_id="req-a" AND (state="ACTIVE" OR state="QUEUED")'), []);
    await assert.rejects(list('labels.request_id:"req"'), (error: { code: number }) => error.code === 400);
  });
});

describe('local bucket uploads', () => {
  it('stores a media upload and delivers the finalize CloudEvent for it', async () => {
    const response = await fetch(
      `${api.url}/upload/storage/v1/b/uploads-bucket/o?uploadType=media&name=uploads/a%20b.mp4`,
      {
        method: 'POST',
        headers: { 'content-type': 'video/mp4' },
        body: 'frames',
      },
    );
    assert.equal(response.status, 200);
    assert.equal(await readFile(join(root, 'uploads-bucket', 'uploads', 'a b.mp4'), 'utf8'), 'frames');
    assert.equal(events.length, 1);
    const [event] = events;
    assert.equal(event!.type, 'google.cloud.storage.object.v1.finalized');
    assert.equal(event!.source, '//storage.googleapis.com/projects/_/buckets/uploads-bucket');
    assert.equal(event!.subject, 'objects/uploads/a b.mp4');
    assert.equal(event!.data.name, 'uploads/a b.mp4');
    assert.equal(event!.data.size, '6');
    assert.equal(event!.data.contentType, 'video/mp4');
    assert.match(event!.data.generation, /^\d+$/);
  });

  it('refuses an upload over the size limit with 413 and leaves no file behind', async () => {
    const small = await startLocalApi({ workflows: {}, bucket: new LocalBucket({ root, log }), log, maxBodyBytes: 10 });
    try {
      const response = await fetch(`${small.url}/upload/storage/v1/b/uploads-bucket/o?uploadType=media&name=big.bin`, {
        method: 'POST',
        body: 'x'.repeat(20),
      });
      assert.equal(response.status, 413);
      const left = (await readdir(join(root, 'uploads-bucket'))).filter((entry) => entry.startsWith('big.bin'));
      assert.deepEqual(left, [], 'neither the object nor its temporary file remains');
    } finally {
      await small.close();
    }
  });

  it('writes outside the uploads prefix emit no event; names escaping the bucket are refused', async () => {
    const before = events.length;
    const stored = await fetch(`${api.url}/upload/storage/v1/b/uploads-bucket/o?uploadType=media&name=requests/x.txt`, {
      method: 'POST',
      body: 'x',
    });
    assert.equal(stored.status, 200);
    assert.equal(events.length, before);
    const escaping = await fetch(`${api.url}/upload/storage/v1/b/uploads-bucket/o?uploadType=media&name=../../etc/x`, {
      method: 'POST',
      body: 'x',
    });
    assert.equal(escaping.status, 400);
    assert.equal(((await escaping.json()) as { error: { status: string } }).error.status, 'INVALID_ARGUMENT');
  });
});
