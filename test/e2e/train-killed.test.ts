/**
 * The real train stage killed with SIGKILL after its second checkpoint, on the local stack with every real
 * stage (issue 25; docs/faults.md): the launcher's retry (Cloud Run's) resumes from the checkpoint, the manifest
 * says from which step, the request COMPLETES, and its held-out PSNR is that of an uninterrupted run of the
 * same request beside it, within noise. Sized small: the sample video's preview path, 150 steps.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { createLogger } from '../../lib/log.js';
import { requestParams } from '../../local/reconstruct/params.js';
import { startStack, type Stack } from '../../local/stack.js';
import { call } from '../../local/json-http.js';
import { sharedData } from '../support/data.js';
import { until } from '../support/http.js';

const BUCKET = 'splatflow-local';
let data: string;
let stack: Stack;

before(async () => {
  data = await mkdtemp(join(tmpdir(), 'splatflow-train-killed-'));
  process.env.METADATA_SERVER_DETECTION = 'none';
  stack = await startStack({
    data,
    bucket: BUCKET,
    apiPort: 0,
    log: createLogger({ level: 'ERROR' }),
    env: { LOG_LEVEL: 'ERROR' },
  });
});
after(async () => {
  await stack?.stop();
  await rm(data, { recursive: true, force: true });
});

/** Pids of the processes whose environment names the request and the stage (the stage job's own process). */
async function stageProcesses(id: string, stage: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const env = await readFile(`/proc/${entry}/environ`, 'utf8').catch(() => '');
    const vars = env.split('\0');
    if (vars.includes(`SPLATFLOW_REQUEST_ID=${id}`) && vars.includes(`SPLATFLOW_STAGE=${stage}`)) pids.push(+entry);
  }
  return pids;
}

interface TrainManifest {
  metrics: { resumed_from_step: number; quality: { test: { psnr: number } } };
}

it('train killed after its second checkpoint resumes from it and ends as an uninterrupted run does', async () => {
  const video = await readFile(sharedData('watch', 'watch_orbit.mp4'));
  await mkdir(join(data, BUCKET), { recursive: true });
  await writeFile(join(data, BUCKET, 'inputs.mp4'), video);
  const params = requestParams({ preset: 'preview', iterations: 150 }) as {
    train: Record<string, unknown>;
    sfm: Record<string, unknown>;
  };
  params.train = { ...params.train, checkpoint_every: 50 };
  // sfm on one thread with its seed repeats exactly, so both requests train on the same model and the held-out
  // figures differ only by what the resume changed.
  params.sfm = { ...params.sfm, num_threads: 1 };
  const ids: string[] = [];
  for (const session of ['killed', 'uninterrupted']) {
    const queued = await call<{ request_id: string }>(`${stack.urls.functions.queue}/enqueue`, {
      method: 'POST',
      body: { session_id: session, input: { uri: `gs://${BUCKET}/inputs.mp4` }, params },
    });
    assert.equal(queued.status, 201);
    ids.push(queued.body.request_id);
  }
  const [killed, uninterrupted] = ids as [string, string];
  const train = (id: string) => join(data, BUCKET, 'requests', id, 'train');
  // The checkpoint is one object, replaced whole: its second version is the second checkpoint.
  const checkpoint = join(train(killed), 'checkpoints', 'latest.pt');
  const first = await until(
    'the first checkpoint',
    () =>
      stat(checkpoint).then(
        (s) => s.mtimeMs,
        () => undefined,
      ),
    600,
  );
  await until(
    'the second checkpoint',
    () =>
      stat(checkpoint).then(
        (s) => (s.mtimeMs !== first ? true : undefined),
        () => undefined,
      ),
    600,
  );
  const pids = await stageProcesses(killed, 'train');
  assert.ok(pids.length > 0, 'the train process is running');
  for (const pid of pids) process.kill(pid, 'SIGKILL');

  const ended = async (id: string) => {
    const status = (await call<{ status: string; error?: unknown }>(`${stack.urls.functions.queue}/status/${id}`)).body;
    return ['COMPLETED', 'FAILED'].includes(status.status) ? status : undefined;
  };
  for (const id of ids) {
    const status = await until(`request ${id} to end`, () => ended(id), 900);
    assert.equal(status.status, 'COMPLETED', JSON.stringify(status.error));
  }
  const manifest = async (id: string) =>
    (JSON.parse(await readFile(join(train(id), 'manifest.json'), 'utf8')) as TrainManifest).metrics;
  const [resumed, whole] = [await manifest(killed), await manifest(uninterrupted)];
  assert.equal(whole.resumed_from_step, 0, 'the run beside it was not interrupted');
  assert.ok(resumed.resumed_from_step >= 100, `resumed from ${resumed.resumed_from_step}`);
  const [a, b] = [resumed.quality.test.psnr, whole.quality.test.psnr];
  process.stderr.write(`train killed: resumed from ${resumed.resumed_from_step}; PSNR ${a} dB vs ${b} dB\n`);
  // Same frames, same sfm model, same seeds: what is left is training's own noise (threaded reductions).
  assert.ok(Math.abs(a - b) < 0.5, `held-out PSNR ${a} dB resumed, ${b} dB uninterrupted`);
});
