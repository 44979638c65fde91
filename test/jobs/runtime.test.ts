/**
 * The job runtime: the contract's failures, manifest-last, re-runs, the progress bar, and a whole
 * stage over gs:// with the real GCS client against the loopback fake.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createLogger } from '../../lib/log.js';
import { runStage } from '../../jobs/runtime/runner.js';
import { defineStage, type AnyStage } from '../../jobs/runtime/stage.js';
import { createLocalStorage } from '../../jobs/runtime/storage-local.js';
import type { Manifest } from '../../jobs/runtime/manifest.js';
import type { Storage } from '../../jobs/runtime/storage.js';
import { checkErrorRecord, type ErrorRecord } from '../../jobs/runtime/error-record.js';
import { startFakeGcs, type FakeGcs } from '../support/fake-gcs.js';
import { panClip, SCEAUX_PHOTOS, testClip } from '../support/media.js';
import { readManifest, runStageProcess } from '../support/stage-process.js';

let work: string;
before(async () => {
  work = await mkdtemp(join(tmpdir(), 'runtime-test-'));
});
after(() => rm(work, { recursive: true, force: true }));

/** A stage made for these tests: writes `count` files, reporting progress as it goes. */
function exportStage(behaviour: 'ok' | 'throws' | 'bad-metrics'): AnyStage {
  return defineStage<{ count: number }, { written: number }>({
    name: 'export',
    params: {
      type: 'object',
      properties: { count: { type: 'integer', minimum: 0, default: 2 } },
      required: [],
      additionalProperties: false,
    },
    metrics: {
      type: 'object',
      properties: { written: { type: 'integer' } },
      required: ['written'],
      additionalProperties: false,
    },
    async run(ctx) {
      for (let i = 0; i < ctx.params.count; i++) {
        await writeFile(join(ctx.outDir, `out-${i}.txt`), `file ${i}`);
        ctx.progress((i + 1) / ctx.params.count, 'writing');
      }
      if (behaviour === 'throws') throw new Error('disk on fire\n  at somewhere deep');
      return { metrics: { written: behaviour === 'bad-metrics' ? -0.5 : ctx.params.count } };
    },
  });
}

interface InProcessOptions {
  tty?: { write(t: string): void };
  /** Cloud Run's task variables. */
  task?: Record<string, string>;
  storage?: Storage;
  log?: (line: string) => void;
}

async function inProcess(stage: AnyStage, prefix: string, params: object = {}, options: InProcessOptions = {}) {
  const errors: string[] = [];
  const code = await runStage([stage], {
    env: {
      SPLATFLOW_STAGE: 'export',
      SPLATFLOW_REQUEST_ID: 'r-1',
      SPLATFLOW_INPUT_URI: '/nowhere',
      SPLATFLOW_REQUEST_PREFIX: prefix,
      SPLATFLOW_PARAMS: JSON.stringify(params),
      ...options.task,
    },
    storage: options.storage ?? createLocalStorage(),
    log: createLogger({ sink: options.log ?? (() => undefined) }),
    tty: options.tty,
    stderr: (line) => errors.push(line),
  });
  return { code, errors };
}

describe('runner', () => {
  it('writes outputs with sizes and checksums, then the manifest', async () => {
    const prefix = join(work, 'ok') + '/';
    const { code } = await inProcess(exportStage('ok'), prefix, { count: 3 });
    assert.equal(code, 0);
    const manifest = await readManifest(join(prefix, 'export', 'manifest.json'));
    assert.deepEqual(
      manifest.outputs.map((o) => [o.path, o.size]),
      [
        ['out-0.txt', 6],
        ['out-1.txt', 6],
        ['out-2.txt', 6],
      ],
    );
    assert.equal(manifest.outputs[0]?.sha256, createHash('sha256').update('file 0').digest('hex'));
    assert.deepEqual(manifest.parameters, { count: 3 });
    assert.deepEqual(manifest.metrics, { written: 3 });
  });

  it('a failing stage leaves a one-line cause, exit 1 (retryable) and no manifest', async () => {
    const prefix = join(work, 'throws') + '/';
    const { code, errors } = await inProcess(exportStage('throws'), prefix);
    assert.equal(code, 1);
    assert.deepEqual(errors, ['export failed: disk on fire at somewhere deep']);
    assert.equal(existsSync(join(prefix, 'export', 'manifest.json')), false);
  });

  it('a manifest that breaks its schema is never written', async () => {
    const prefix = join(work, 'bad') + '/';
    const { code, errors } = await inProcess(exportStage('bad-metrics'), prefix);
    assert.equal(code, 1);
    assert.match(errors[0] ?? '', /manifest does not match its schema: \/metrics\/written must be integer/);
    assert.equal(existsSync(join(prefix, 'export', 'manifest.json')), false);
  });

  it('a re-run replaces the previous outputs and leaves none of a larger earlier run behind', async () => {
    const prefix = join(work, 'rerun') + '/';
    assert.equal((await inProcess(exportStage('ok'), prefix, { count: 3 })).code, 0);
    assert.equal((await inProcess(exportStage('ok'), prefix, { count: 1 })).code, 0);
    assert.equal(existsSync(join(prefix, 'export', 'out-2.txt')), false);
    const manifest = await readManifest(join(prefix, 'export', 'manifest.json'));
    assert.equal(manifest.outputs.length, 1);
  });

  it('draws a progress bar on a terminal', async () => {
    let screen = '';
    const { code } = await inProcess(
      exportStage('ok'),
      join(work, 'tty') + '/',
      { count: 4 },
      { tty: { write: (t) => (screen += t) } },
    );
    assert.equal(code, 0);
    assert.match(screen, /\r\[#{8}\.{22}\] {2}25% export: writing/);
    assert.match(screen, /\r\[#{30}\] 100% export/);
    assert.ok(screen.endsWith('\n'));
  });

  it('refuses bad parameters and a broken contract with exit 2 and a cause naming the culprit', async () => {
    const unknown = await inProcess(exportStage('ok'), join(work, 'p') + '/', { cuont: 1 });
    assert.deepEqual(
      [unknown.code, unknown.errors],
      [2, ['export failed: invalid parameters: unknown parameter cuont']],
    );
    const typed = await inProcess(exportStage('ok'), join(work, 'p') + '/', { count: 'many' });
    assert.deepEqual([typed.code, typed.errors], [2, ['export failed: invalid parameters: count must be integer']]);
    const run = await runStageProcess('frames', { input: '/x', prefix: 'no-trailing-slash' });
    assert.equal(run.code, 2);
    assert.match(run.stderr, /^frames failed: invalid configuration: SPLATFLOW_REQUEST_PREFIX must match pattern/);
    const unimplemented = await runStageProcess('train', { input: '/x', prefix: join(work, 'x') + '/' });
    assert.equal(unimplemented.code, 2);
    assert.match(unimplemented.stderr, /stage train is not implemented by this program/);
  });
});

/** The error record a failed run left, checked against its schema. */
async function errorJson(prefix: string): Promise<ErrorRecord> {
  return checkErrorRecord(JSON.parse(await readFile(join(prefix, 'export', 'error.json'), 'utf8')));
}

describe('error.json', () => {
  const task = (execution: string, attempt: number) => ({
    CLOUD_RUN_EXECUTION: execution,
    CLOUD_RUN_TASK_ATTEMPT: String(attempt),
  });

  it('a refusal records exit 2, refused, the cause without the stage name, and the task attempt', async () => {
    const prefix = join(work, 'refused') + '/';
    const { code, errors } = await inProcess(exportStage('ok'), prefix, { count: 'many' }, { task: task('ex-1', 0) });
    assert.equal(code, 2);
    assert.deepEqual(errors, ['export failed: invalid parameters: count must be integer']);
    const record = await errorJson(prefix);
    assert.deepEqual(
      { ...record, at: undefined },
      {
        schema_version: 1,
        stage: 'export',
        request_id: 'r-1',
        exit_code: 2,
        refused: true,
        message: 'invalid parameters: count must be integer',
        execution: 'ex-1',
        attempt: 0,
        at: undefined,
      },
    );
    assert.ok(Math.abs(Date.parse(record.at) - Date.now()) < 60_000);
  });

  it('a crash records exit 1, not refused; outside Cloud Run execution is null and attempt 0', async () => {
    const prefix = join(work, 'crash') + '/';
    assert.equal((await inProcess(exportStage('throws'), prefix)).code, 1);
    const record = await errorJson(prefix);
    assert.deepEqual(
      [record.exit_code, record.refused, record.message, record.execution, record.attempt],
      [1, false, 'disk on fire at somewhere deep', null, 0],
    );
  });

  it('a later success removes the record of an earlier failure', async () => {
    const prefix = join(work, 'recovered') + '/';
    assert.equal((await inProcess(exportStage('throws'), prefix)).code, 1);
    assert.ok(existsSync(join(prefix, 'export', 'error.json')));
    assert.equal((await inProcess(exportStage('ok'), prefix)).code, 0);
    assert.equal(existsSync(join(prefix, 'export', 'error.json')), false);
    assert.ok(existsSync(join(prefix, 'export', 'manifest.json')));
  });

  it('a retry of the same execution answers the earlier refusal without running; another execution runs', async () => {
    const prefix = join(work, 'short-circuit') + '/';
    assert.equal((await inProcess(exportStage('ok'), prefix, { count: -1 }, { task: task('ex-1', 0) })).code, 2);
    const refused = await errorJson(prefix);

    // Valid parameters now: a run would succeed, so exit 2 can only be the earlier answer.
    const retry = await inProcess(exportStage('ok'), prefix, {}, { task: task('ex-1', 1) });
    assert.equal(retry.code, 2);
    assert.deepEqual(retry.errors, [`export failed: ${refused.message}`]);
    assert.equal(existsSync(join(prefix, 'export', 'manifest.json')), false);
    assert.deepEqual(await errorJson(prefix), refused, 'the record of the attempt that did the work stays');

    const another = await inProcess(exportStage('ok'), prefix, {}, { task: task('ex-2', 1) });
    assert.equal(another.code, 0);
    assert.equal(existsSync(join(prefix, 'export', 'error.json')), false);
  });

  it('a first attempt never short-circuits, even on a refusal recorded for its execution', async () => {
    const prefix = join(work, 'first-attempt') + '/';
    assert.equal((await inProcess(exportStage('ok'), prefix, { count: -1 }, { task: task('ex-1', 0) })).code, 2);
    assert.equal((await inProcess(exportStage('ok'), prefix, {}, { task: task('ex-1', 0) })).code, 0);
  });

  it('a record that cannot be written is logged; the stage still fails with its own cause and code', async () => {
    const local = createLocalStorage();
    // Storage that works but for the record, as a bucket refusing one write would.
    const storage = {
      ...local,
      upload: (path: string, uri: string, contentType?: string) =>
        uri.endsWith('/error.json')
          ? Promise.reject(new Error('quota exceeded'))
          : local.upload(path, uri, contentType),
    };
    const logged: string[] = [];
    const prefix = join(work, 'unwritable') + '/';
    const { code, errors } = await inProcess(
      exportStage('ok'),
      prefix,
      { count: 'many' },
      { storage, log: (line) => logged.push(line) },
    );
    assert.equal(code, 2);
    assert.deepEqual(errors, ['export failed: invalid parameters: count must be integer']);
    assert.ok(logged.some((line) => /cannot write the error record.*quota exceeded/.test(line)));
    assert.equal(existsSync(join(prefix, 'export', 'error.json')), false);
  });
});

describe('a stage over gs://', () => {
  let gcs: FakeGcs;
  before(async () => {
    gcs = await startFakeGcs();
  });
  after(() => gcs.close());

  it('reads the input from a bucket, writes frames there and the manifest after every frame', async () => {
    const clip = join(work, 'clip.mp4');
    // A pan over a real photo: the frames stage chooses frames from the camera's motion.
    await panClip(clip, join(SCEAUX_PHOTOS, '100_7105.JPG'), {
      width: 320,
      height: 240,
      seconds: 2,
      fps: 10,
      speed: 0.5,
    });
    gcs.put('splatflow-test', 'uploads/clip.mp4', await readFile(clip), 'video/mp4');
    // As the cloud jobs run: the input checked against the upload locations.
    const env = { STORAGE_EMULATOR_HOST: gcs.url, SPLATFLOW_INPUT_LOCATIONS: 'gs://splatflow-test/uploads/' };
    const prefix = 'gs://splatflow-test/requests/r-9/';
    const frames = await runStageProcess('frames', {
      input: 'gs://splatflow-test/uploads/clip.mp4',
      prefix,
      params: { target_frames: 5, min_frames: 3 },
      env,
    });
    assert.equal(frames.code, 0, frames.stderr);
    const names = gcs.names('splatflow-test').filter((n) => n.startsWith('requests/r-9/frames/'));
    const uploads = gcs.requests.filter((r) => r.startsWith('POST /upload/'));
    assert.match(uploads.at(-1) ?? '', /name=requests%2Fr-9%2Fframes%2Fmanifest\.json/);
    const manifest = JSON.parse(
      gcs.get('splatflow-test', 'requests/r-9/frames/manifest.json')?.toString() ?? '{}',
    ) as Manifest;
    assert.equal(manifest.inputs[0]?.path, 'gs://splatflow-test/uploads/clip.mp4');
    // Every output is in the bucket, and the manifest beside them.
    assert.equal(names.length, manifest.outputs.length + 1);
    assert.ok(
      manifest.outputs.filter((o) => /\.(jpe?g|png)$/.test(o.path)).length >= 3,
      JSON.stringify(manifest.outputs),
    );

    // The next stage finds them there too.
    const filter = await runStageProcess('filter', { input: 'unused', prefix, params: { min_frames: 3 }, env });
    assert.equal(filter.code, 0, filter.stderr);
    assert.ok(gcs.get('splatflow-test', 'requests/r-9/filter/manifest.json'));
  });

  it('refuses an input outside the upload locations without reading it', async () => {
    gcs.put('splatflow-secrets', 'uploads/clip.mp4', Buffer.from('not for this job'), 'video/mp4');
    const seen = gcs.requests.length;
    const run = await runStageProcess('frames', {
      input: 'gs://splatflow-secrets/uploads/clip.mp4',
      prefix: 'gs://splatflow-test/requests/r-10/',
      env: { STORAGE_EMULATOR_HOST: gcs.url, SPLATFLOW_INPUT_LOCATIONS: 'gs://splatflow-test/uploads/' },
    });
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, /not under an allowed input location/);
    assert.deepEqual(
      gcs.requests.slice(seen).filter((request) => request.includes('splatflow-secrets')),
      [],
      'no call named the object',
    );
  });
});

describe('local paths', () => {
  it('accept file:// URIs for the input and the prefix', async () => {
    const dir = join(work, 'file-uri');
    await mkdir(dir);
    const clip = join(dir, 'clip.mp4');
    await testClip(clip, { width: 160, height: 120, seconds: 1, fps: 10 });
    const run = await runStageProcess('frames', {
      input: `file://${clip}`,
      prefix: `file://${dir}/req/`,
      // Paths and URIs, not capture quality: the 1 s still test pattern is let past the clip checks.
      params: { target_frames: 3, min_frames: 3, min_duration_s: 0, min_travel: 0 },
    });
    assert.equal(run.code, 0, run.stderr);
    assert.ok(existsSync(join(dir, 'req', 'frames', 'manifest.json')));
  });
});
