/**
 * The sfm stage through the real entry point, on a request prepared by really running frames →
 * filter: 8 real photos of the watch orbit, downscaled to 640 px so COLMAP stays quick on 2
 * cores (the core's own accuracy checks live in sfm.test.ts).
 */
import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { exec } from '../../jobs/runtime/exec.js';
import { readSparseModel } from '../../jobs/sfm/colmap-model.js';
import { DEFAULT_PYTHON } from '../../jobs/sfm/run-sfm.js';
import type { SfmMetrics } from '../../jobs/sfm/schema.js';
import { sharedData } from '../support/data.js';
import { progressOf, readManifest, runStageProcess } from '../support/stage-process.js';

const ENGINE = fileURLToPath(new URL('../../../jobs/sfm/engine.py', import.meta.url));
const VOCAB_TREE = fileURLToPath(new URL('../../../test/sfm/vocab_tree.py', import.meta.url));

let work: string;
before(async () => {
  work = await mkdtemp(join(tmpdir(), 'sfm-stage-test-'));
});
after(() => rm(work, { recursive: true, force: true }));

/** Runs frames then filter on `photos` into a fresh request prefix and answers the prefix. */
async function framesAndFilter(name: string, photos: string): Promise<string> {
  const prefix = join(work, name, 'req') + '/';
  const frames = await runStageProcess('frames', {
    input: photos,
    prefix,
    params: { max_long_side: 640, min_frames: 3 },
  });
  assert.equal(frames.code, 0, frames.stderr);
  const filter = await runStageProcess('filter', { input: photos, prefix, params: { min_frames: 3 } });
  assert.equal(filter.code, 0, filter.stderr);
  return prefix;
}

/** Photos 11-18 of the watch orbit into `{work}/{name}/photos`, answered. */
async function watchPhotos(name: string): Promise<string> {
  const photos = join(work, name, 'photos');
  await mkdir(photos, { recursive: true });
  for (let n = 11; n <= 18; n++) {
    const file = `watch_${n}.jpg`;
    await copyFile(sharedData('watch', 'images', file), join(photos, file));
  }
  return photos;
}

describe('sfm stage on frames → filter of 8 real photos', () => {
  let prefix: string;
  let run: Awaited<ReturnType<typeof runStageProcess>>;

  before(async () => {
    const photos = await watchPhotos('watch');
    prefix = await framesAndFilter('watch', photos);
    run = await runStageProcess('sfm', {
      input: photos,
      prefix,
      // 8 photos at 640 px give ~150 points; the gate's default of 100 would make this test flaky.
      params: { max_image_size: 640, undistort_max_image_size: 320, num_threads: 2, min_points: 50 },
    });
  });

  it('exits 0 and writes the model, the undistorted images and the manifest under {prefix}sfm/', async () => {
    assert.equal(run.code, 0, run.stderr);
    const sfm = join(prefix, 'sfm');
    for (const file of ['cameras.bin', 'images.bin', 'points3D.bin']) {
      assert.ok(existsSync(join(sfm, 'sparse', '0', file)), `sparse/0/${file}`);
    }
    const model = await readSparseModel(join(sfm, 'undistorted', 'sparse'));
    assert.ok(model.cameras.every((c) => c.model === 'PINHOLE'));
    const images = (await readdir(join(sfm, 'undistorted', 'images'))).sort();
    assert.deepEqual(images, model.images.map((i) => i.name).sort());
    // Undistorted at the asked size, for the train stage.
    const meta = await sharp(join(sfm, 'undistorted', 'images', images[0]!)).metadata();
    assert.ok(Math.max(meta.width, meta.height) <= 320);

    const manifest = await readManifest(join(sfm, 'manifest.json'));
    const paths = manifest.outputs.map((o) => o.path);
    assert.ok(paths.includes('sparse/0/points3D.bin') && paths.includes('undistorted/sparse/cameras.bin'));
    assert.equal(paths.filter((p) => p.startsWith('undistorted/images/')).length, images.length);
    // Every kept frame of the filter stage was read, and nothing of the frames stage but its manifest.
    assert.equal(manifest.inputs.length, 8);
    assert.ok(manifest.inputs.every((i) => i.path.includes('/filter/')));
    assert.equal(manifest.parameters['min_points'], 50);
    assert.match(manifest.tools['colmap'] ?? '', /^4\./);
    for (const phase of ['features_s', 'matching_s', 'mapping_s', 'undistortion_s', 'read_filter', 'upload']) {
      assert.ok((manifest.timings[phase] ?? -1) >= 0, phase);
    }
    const m = manifest.metrics as unknown as SfmMetrics;
    assert.equal(m.images_input, 8);
    assert.equal(m.images_registered, model.images.length);
    assert.ok(m.images_registered >= 6, `registered ${m.images_registered} of 8`);
  });

  it('treats photos as an image set, as the frames manifest records: a camera per photo', async () => {
    assert.match(run.stdout, /"message":"reconstructed"[^\n]*"input_kind":"images"/);
    const m = (await readManifest(join(prefix, 'sfm', 'manifest.json'))).metrics as unknown as SfmMetrics;
    assert.equal(m.cameras, m.images_registered);
  });

  it('reports rising progress up to 1', () => {
    const progress = progressOf(run.stdout);
    assert.ok(progress.length > 5);
    assert.deepEqual(
      progress,
      [...progress].sort((a, b) => a - b),
    );
    assert.equal(progress.at(-1), 1);
  });
});

describe("sfm stage with the image's vocabulary tree (SPLATFLOW_VOCAB_TREE_PATH)", () => {
  it('detects loops with it when the request names no tree, and records it in the manifest', async () => {
    const photos = await watchPhotos('tree');
    const prefix = await framesAndFilter('tree', photos);
    // A 256-word tree from the photos' own features (8 photos: a second or two), as a container would ship one.
    const database = join(work, 'tree', 'features.db');
    const tree = join(work, 'tree', 'vocab_tree.bin');
    // The stage's own extraction (engine.py), then COLMAP's tree builder through pycolmap: a FAISS tree.
    const spec = {
      database,
      images: photos,
      image_names: (await readdir(photos)).sort(),
      camera_model: 'SIMPLE_RADIAL',
      single_camera: false,
      existing_camera_id: null,
      max_image_size: 640,
      num_threads: 2,
      seed: 0,
      gpu: false,
    };
    await exec(DEFAULT_PYTHON, [ENGINE, 'extract', JSON.stringify(spec)]);
    await exec(DEFAULT_PYTHON, [VOCAB_TREE, database, tree, '256']);
    const run = await runStageProcess('sfm', {
      input: photos,
      prefix,
      // This checks where the tree comes from and what the manifest says, not how well 8 photos reconstruct.
      params: {
        matcher: 'sequential',
        max_image_size: 640,
        undistort_max_image_size: 160,
        num_threads: 2,
        min_registered_share: 0,
        min_points: 0,
      },
      env: { SPLATFLOW_VOCAB_TREE_PATH: tree },
    });
    assert.equal(run.code, 0, run.stderr);
    const manifest = await readManifest(join(prefix, 'sfm', 'manifest.json'));
    const m = manifest.metrics as unknown as SfmMetrics;
    assert.deepEqual([m.matcher, m.loop_detection, m.vocab_tree], ['sequential', true, tree]);
    assert.equal(manifest.parameters['vocab_tree_path'], '');
  });
});

/** 4 photos of noise, through frames → filter into a fresh request prefix. */
async function noiseRequest(name: string): Promise<{ photos: string; prefix: string }> {
  const photos = join(work, name, 'photos');
  await mkdir(photos, { recursive: true });
  for (let i = 0; i < 4; i++) {
    await sharp({
      create: {
        width: 320,
        height: 240,
        channels: 3,
        background: '#000',
        noise: { type: 'gaussian', mean: 128, sigma: 60 },
      },
    })
      .jpeg()
      .toFile(join(photos, `noise_${i}.jpg`));
  }
  return { photos, prefix: await framesAndFilter(name, photos) };
}

describe('sfm stage refusals', () => {
  it('refuses frames of noise with exit 2, a one-line cause and no manifest', async () => {
    const { photos, prefix } = await noiseRequest('noise');
    const run = await runStageProcess('sfm', { input: photos, prefix, params: { num_threads: 2 } });
    assert.equal(run.code, 2, run.stderr);
    const lines = run.stderr.trim().split('\n');
    assert.equal(lines.length, 1, run.stderr);
    assert.match(lines[0]!, /sfm failed: .*(reconstruct|register|images)/i);
    assert.equal(existsSync(join(prefix, 'sfm', 'manifest.json')), false);
  });

  it("refuses a missing vocabulary tree named by the image's SPLATFLOW_VOCAB_TREE_PATH with exit 2", async () => {
    const { photos, prefix } = await noiseRequest('no-tree');
    const run = await runStageProcess('sfm', {
      input: photos,
      prefix,
      params: { matcher: 'sequential' },
      env: { SPLATFLOW_VOCAB_TREE_PATH: '/opt/sfm/share/missing.bin' },
    });
    assert.equal(run.code, 2, run.stderr);
    assert.equal(
      run.stderr.trim(),
      'sfm failed: the vocabulary tree /opt/sfm/share/missing.bin (SPLATFLOW_VOCAB_TREE_PATH) does not exist',
    );
  });

  it('refuses an input_kind parameter: the frames manifest decides it', async () => {
    const prefix = join(work, 'param', 'req') + '/';
    const run = await runStageProcess('sfm', { input: 'unused', prefix, params: { input_kind: 'video' } });
    assert.equal(run.code, 2);
    assert.match(run.stderr, /unknown parameter input_kind/);
  });

  it('refuses to start before the filter stage has finished', async () => {
    const prefix = join(work, 'early', 'req') + '/';
    const run = await runStageProcess('sfm', { input: 'unused', prefix });
    assert.equal(run.code, 2);
    assert.match(run.stderr.trim(), /^sfm failed: stage frames has not finished/);
  });
});
