/**
 * The local stack as a user starts it (`node dist/local/stack.js`): it prints its URLs, the queue function
 * answers, the Executions API runs the real workflow with the real job definitions against the real queue,
 * and SIGTERM stops everything it started.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { functionTargets } from '../../local/stack.js';
import { call } from '../../local/json-http.js';
import { statusWithHost } from '../support/http.js';

const STACK = fileURLToPath(new URL('../../local/stack.js', import.meta.url));

interface Urls {
  api: string;
  redis: string;
  functions: Record<string, string>;
}

let stack: ChildProcess;
let urls: Urls;
let data: string;

before(async () => {
  data = await mkdtemp(join(tmpdir(), 'splatflow-stack-'));
  stack = spawn(process.execPath, [STACK, '--data', data], {
    env: { ...process.env, LOG_LEVEL: 'INFO', METADATA_SERVER_DETECTION: 'none' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  urls = await new Promise<Urls>((resolve, reject) => {
    stack.once('exit', (code) => reject(new Error(`the stack exited with ${code}`)));
    createInterface({ input: stack.stdout! }).on('line', (line) => {
      try {
        const entry = JSON.parse(line) as { message?: string; urls?: Urls };
        if (entry.message === 'local stack ready' && entry.urls) resolve(entry.urls);
      } catch {
        // a line of a function's own output
      }
    });
  });
});
after(async () => {
  if (stack.exitCode === null) stack.kill('SIGKILL');
  await rm(data, { recursive: true, force: true });
});

describe('local stack', () => {
  it('serves the queue function and runs the reconstruct workflow through the Executions API', async () => {
    const queue = urls.functions.queue!;
    assert.equal((await call(`${queue}/queue`)).status, 200);
    const queued = await call<{ request_id: string }>(`${queue}/enqueue`, {
      method: 'POST',
      body: { session_id: 'stack', input: { uri: '/nonexistent/video.mp4' } },
    });
    const id = queued.body.request_id;
    await call(`${queue}/status/${id}`, { method: 'PUT', body: { status: 'PROCESSING' } });
    const created = await call<{ name: string; state: string }>(
      `${urls.api}/v1/projects/local-project/locations/local-region/workflows/reconstruct/executions`,
      {
        method: 'POST',
        body: {
          argument: JSON.stringify({
            request_id: id,
            input_uri: '/nonexistent/video.mp4',
            output_prefix: `gs://splatflow-local/requests/${id}/`,
          }),
        },
      },
    );
    assert.equal(created.body.state, 'ACTIVE');
    let execution: { state: string; error?: { payload: string } } = created.body;
    for (let i = 0; i < 200 && execution.state === 'ACTIVE'; i++) {
      await sleep(100);
      execution = (await call<typeof execution>(`${urls.api}/v1/${created.body.name}`)).body;
    }
    // The real frames job runs (or fails for want of its program or input): either way the workflow
    // reports the outcome for the stage to the real queue.
    const record = (await call<{ status: string; stage?: string; error?: { stage?: string } }>(`${queue}/status/${id}`))
      .body;
    if (execution.state === 'FAILED') {
      assert.equal(record.status, 'FAILED');
      assert.equal(record.error?.stage, 'frames');
    } else {
      assert.equal(execution.state, 'SUCCEEDED');
    }
  });

  it('runs a triggered request end to end: trigger → dispatcher → Executions API → workflow → queue record', async () => {
    const triggered = await call<{ request_id: string; callback_token: string }>(
      `${urls.functions.trigger}/trigger-reconstruction`,
      {
        method: 'POST',
        headers: { 'x-splatflow-caller': 'tester@example.com' },
        body: { session_id: 'stack-e2e', input: { uri: 'gs://splatflow-local/inputs/video.mp4' } },
      },
    );
    assert.equal(triggered.status, 202);
    type Status = { status: string; stage?: string; error?: { stage?: string; message: string } };
    let status: Status = { status: 'QUEUED' };
    for (let i = 0; i < 300 && !['FAILED', 'COMPLETED'].includes(status.status); i++) {
      await sleep(100);
      status = (await call<Status>(`${urls.functions.status}/status?callback_token=${triggered.body.callback_token}`))
        .body;
    }
    // No stage job is built in this checkout's definitions yet, so the chain ends at the first stage,
    // reported by the workflow through the queue into the durable record.
    if (status.status === 'FAILED') assert.equal(status.error?.stage, 'frames');
    else assert.equal(status.status, 'COMPLETED');
  });

  it('answers only its own loopback Host on the API and function ports (no DNS-rebinding page reaches them)', async () => {
    for (const url of [urls.api, ...Object.values(urls.functions)]) {
      const { port } = new URL(url);
      assert.equal(await statusWithHost(url, `rebound.example:${port}`), 403, url);
      assert.equal(await statusWithHost(url, `127.0.0.1:${Number(port) + 1}`), 403, `${url}: another port`);
      assert.notEqual(await statusWithHost(url, `localhost:${port}`), 403, `${url}: its own name`);
    }
  });

  it('stops everything it started on SIGTERM', async () => {
    const redisPort = Number(new URL(urls.redis).port);
    const exited = new Promise((resolve) => stack.once('exit', resolve));
    stack.kill('SIGTERM');
    await exited;
    for (const url of [urls.api, ...Object.values(urls.functions)]) {
      await assert.rejects(fetch(url), 'nothing answers after the stack stopped');
    }
    await assert.rejects(fetch(`http://127.0.0.1:${redisPort}`));
  });
});

describe('function targets', () => {
  it('are read from the compiled entry point', () => {
    assert.deepEqual(functionTargets(`functions.http('queue', x);\nfunctions.cloudEvent("onUpload", y);`), [
      { kind: 'http', target: 'queue' },
      { kind: 'cloudEvent', target: 'onUpload' },
    ]);
  });
});
