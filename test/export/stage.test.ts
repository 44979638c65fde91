/**
 * The export stage through the real entry point: a synthetic trained splat placed as a finished
 * train stage, next to a finished sfm stage's camera model, on a local request prefix. The
 * core's format and thumbnail checks live in export.test.ts.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import type { Report } from '../../jobs/export/report.js';
import type { ExportMetrics } from '../../jobs/export/schema.js';
import { sha256File } from '../../jobs/runtime/checksum.js';
import { gaussianPly, scene } from '../support/gaussian-ply.js';
import { readManifest, runStageProcess } from '../support/stage-process.js';

let work: string;
before(async () => {
  work = await mkdtemp(join(tmpdir(), 'export-stage-test-'));
});
after(() => rm(work, { recursive: true, force: true }));

/** Writes `files` under `{prefix}{stage}/` and, last, a manifest vouching for them: a finished stage. */
async function finishedStage(
  prefix: string,
  stage: string,
  files: Record<string, string | Buffer>,
  extra: { metrics?: object; tools?: Record<string, string> } = {},
): Promise<void> {
  const folder = join(prefix, stage);
  const outputs = [];
  for (const [name, content] of Object.entries(files)) {
    const path = join(folder, name);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, content);
    outputs.push({ path: name, size: (await stat(path)).size, sha256: await sha256File(path) });
  }
  await mkdir(folder, { recursive: true });
  const manifest = {
    schema_version: 1,
    stage,
    request_id: 'req-1',
    started_at: '2026-01-01T00:00:00.000Z',
    finished_at: '2026-01-01T00:01:00.000Z',
    duration_s: 60,
    inputs: [],
    outputs,
    parameters: {},
    tools: extra.tools ?? {},
    timings: {},
    metrics: extra.metrics ?? {},
  };
  await writeFile(join(folder, 'manifest.json'), JSON.stringify(manifest));
}

const splats = scene();
const png = (width: number, height: number) =>
  sharp({ create: { width, height, channels: 3, background: [90, 120, 200] } })
    .png()
    .toBuffer();
/** A finished train stage: the splat, its renders (jobs/train/renders.py) and the manifest listing them. */
async function finishedTrain(prefix: string): Promise<void> {
  const renders = {
    thumbnail: { file: 'thumbnail.png', camera: 'b.jpg', width: 512, height: 384 },
    heldout: [{ file: 'heldout/a.png', camera: 'a.jpg', psnr: 22.1, ssim: 0.7 }],
  };
  await finishedStage(
    prefix,
    'train',
    {
      'point_cloud.ply': gaussianPly(splats),
      'thumbnail.png': await png(512, 384),
      'heldout/a.png': await png(256, 96),
    },
    { metrics: { psnr: 24.5, renders } },
  );
}

describe('export stage after finished sfm and train stages', () => {
  const prefix = () => join(work, 'done', 'req') + '/';
  let run: Awaited<ReturnType<typeof runStageProcess>>;

  before(async () => {
    await finishedStage(prefix(), 'frames', {}, { metrics: { source: 'images', count: 2 }, tools: { ffmpeg: '5.1' } });
    // One PINHOLE camera 640×480; two views of the origin from 4 units (as in export.test.ts).
    await finishedStage(
      prefix(),
      'sfm',
      {
        'undistorted/sparse/cameras.txt': '1 PINHOLE 640 480 500 500 320 240\n',
        'undistorted/sparse/images.txt': '1 1 0 0 0 0 0 4 1 a.jpg\n\n2 0.9238795 0 0.3826834 0 0 0 4 1 b.jpg\n\n',
        'undistorted/sparse/points3D.txt': '',
        'undistorted/images/a.jpg': 'not needed by export',
      },
      { tools: { colmap: '3.8' }, metrics: { images_registered: 2 } },
    );
    await finishedTrain(prefix());
    run = await runStageProcess('export', { input: 'unused', prefix: prefix(), params: { thumbnail_size: 256 } });
  });

  it('exits 0 with the web formats, cameras, thumbnails, viewer and report under {prefix}export/', async () => {
    assert.equal(run.code, 0, run.stderr);
    const out = join(prefix(), 'export');
    const manifest = await readManifest(join(out, 'manifest.json'));
    assert.deepEqual(manifest.outputs.map((o) => o.path).sort(), [
      'cameras.json',
      'report.json',
      'scene.sog',
      'scene.splat',
      'scene.spz',
      'thumbnail.png',
      'thumbnail_small.png',
      'viewer/index.html',
    ]);
    for (const output of manifest.outputs) assert.equal((await stat(join(out, output.path))).size, output.size);
    const metrics = manifest.metrics as unknown as ExportMetrics;
    assert.equal(metrics.splats, splats.length);
    assert.equal(metrics.cameras, 2);
    assert.deepEqual([metrics.thumbnail_camera, metrics.thumbnail_width, metrics.heldout_views], ['b.jpg', 256, 1]);
    assert.match(manifest.tools['splat-transform'] ?? '', /^\d/);
    for (const phase of ['fetch_input', 'spz_s', 'sog_s', 'thumbnail_s', 'upload'])
      assert.ok(phase in manifest.timings, phase);
    const cameras = JSON.parse(await readFile(join(out, 'cameras.json'), 'utf8')) as unknown[];
    assert.equal(cameras.length, 2);
  });

  it('reads the trained splat, its renders and the camera model, not the undistorted images', async () => {
    const manifest = await readManifest(join(prefix(), 'export', 'manifest.json'));
    const inputs = manifest.inputs.map((i) => i.path.slice(prefix().length)).sort();
    assert.deepEqual(inputs, [
      'sfm/undistorted/sparse/cameras.txt',
      'sfm/undistorted/sparse/images.txt',
      'sfm/undistorted/sparse/points3D.txt',
      'train/heldout/a.png',
      'train/point_cloud.ply',
      'train/thumbnail.png',
    ]);
  });

  it('reports every finished stage in pipeline order, export last', async () => {
    const report = JSON.parse(await readFile(join(prefix(), 'export', 'report.json'), 'utf8')) as Report;
    assert.deepEqual(
      report.stages.map((s) => s.stage),
      ['frames', 'sfm', 'train', 'export'],
    );
    assert.equal(report.tools['colmap'], '3.8');
    assert.equal(report.stages.find((s) => s.stage === 'train')?.metrics['psnr'], 24.5);
  });
});

describe('export stage refusals', () => {
  it('refuses a train output that is not a splat with exit 2, a one-line cause and no manifest', async () => {
    const prefix = join(work, 'junk', 'req') + '/';
    await finishedTrain(prefix);
    await writeFile(join(prefix, 'train', 'point_cloud.ply'), 'hello');
    const run = await runStageProcess('export', { input: 'unused', prefix });
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, /^export failed: cannot read the trained splat .*point_cloud\.ply: not a PLY file\n$/);
    assert.equal(existsSync(join(prefix, 'export', 'manifest.json')), false);
  });

  it('refuses to start before the train stage has finished', async () => {
    const prefix = join(work, 'early', 'req') + '/';
    const run = await runStageProcess('export', { input: 'unused', prefix });
    assert.equal(run.code, 2);
    assert.match(run.stderr, /^export failed: stage train has not finished/);
  });

  it('refuses a train stage whose manifest lists no renders, saying to run it again', async () => {
    const prefix = join(work, 'norenders', 'req') + '/';
    await finishedStage(prefix, 'train', { 'point_cloud.ply': gaussianPly(splats) });
    const run = await runStageProcess('export', { input: 'unused', prefix });
    assert.equal(run.code, 2);
    assert.match(
      run.stderr,
      /^export failed: the train stage's manifest has no valid metrics\.renders .*run the train stage again\n$/,
    );
  });

  it('refuses a finished train stage without point_cloud.ply', async () => {
    const prefix = join(work, 'noply', 'req') + '/';
    await finishedTrain(prefix);
    await rm(join(prefix, 'train', 'point_cloud.ply'));
    const run = await runStageProcess('export', { input: 'unused', prefix });
    assert.equal(run.code, 2);
    assert.match(run.stderr, /^export failed: input not found: .*\/train\/point_cloud\.ply\n$/);
  });
});
