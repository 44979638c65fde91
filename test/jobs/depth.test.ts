/**
 * The depth stage with small ONNX models sharing Depth-Anything-V2's contract, on frames that
 * went through the real frames and filter stages. Pre/post-processing is checked against values
 * computed here independently (ImageNet normalisation of known colours, the size rule).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { batches, type DepthMetrics } from '../../jobs/depth/stage.js';
import { modelInputSize, resizeBilinear } from '../../jobs/depth/geometry.js';
import { WATCH_PHOTO } from '../support/media.js';
import { depthModel } from '../support/onnx-model.js';
import { readManifest, runStageProcess } from '../support/stage-process.js';

const LEFT = [200, 30, 60];
const RIGHT = [20, 180, 240];

/** What a channel-mean model must answer for a flat colour, from the published constants. */
function expectedMean(rgb: number[]): number {
  const mean = [0.485, 0.456, 0.406];
  const std = [0.229, 0.224, 0.225];
  let sum = 0;
  for (let c = 0; c < 3; c++) sum += ((rgb[c] ?? NaN) / 255 - (mean[c] ?? NaN)) / (std[c] ?? NaN);
  return sum / 3;
}

/** The colour the depth stage actually read (the frames stage stored the card as JPEG). */
async function pixel(path: string, x: number, y: number): Promise<number[]> {
  const { data, info } = await sharp(path).raw().toBuffer({ resolveWithObject: true });
  const at = (y * info.width + x) * info.channels;
  return [...data.subarray(at, at + 3)];
}

let work: string;
let prefix: string;
let model: string;
let modelSha: string;

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'depth-test-'));
  const photos = join(work, 'photos');
  await mkdir(photos);
  // One two-colour card (300×200) and two real photos (360×480): two model input sizes.
  const card = Buffer.alloc(300 * 200 * 3);
  for (let i = 0; i < 300 * 200; i++) card.set(i % 300 < 150 ? LEFT : RIGHT, i * 3);
  await sharp(card, { raw: { width: 300, height: 200, channels: 3 } })
    .png()
    .toFile(join(photos, 'a-card.png'));
  await sharp(WATCH_PHOTO(3)).resize(360, 480).toFile(join(photos, 'b-watch.jpg'));
  await sharp(WATCH_PHOTO(30)).resize(360, 480).toFile(join(photos, 'c-watch.jpg'));
  prefix = join(work, 'req') + '/';
  const params = { min_frames: 3 };
  assert.equal((await runStageProcess('frames', { input: photos, prefix, params })).code, 0);
  const filter = await runStageProcess('filter', { input: photos, prefix, params: { ...params, sharpness_ratio: 0 } });
  assert.equal(filter.code, 0, filter.stderr);
  const bytes = depthModel();
  model = join(work, 'mean.onnx');
  await writeFile(model, bytes);
  modelSha = createHash('sha256').update(bytes).digest('hex');
});
after(() => rm(work, { recursive: true, force: true }));

describe('depth stage', () => {
  it('runs the model on every kept frame and writes 16-bit depth that decodes to the model output', async () => {
    const run = await runStageProcess('depth', {
      input: 'unused',
      prefix,
      params: { model_uri: model, model_sha256: modelSha, batch_size: 2 },
    });
    assert.equal(run.code, 0, run.stderr);
    const manifest = await readManifest(join(prefix, 'depth', 'manifest.json'));
    const metrics = manifest.metrics as unknown as DepthMetrics;
    assert.equal(metrics.execution_provider, 'cpu');
    assert.deepEqual(metrics.model, {
      uri: model,
      sha256: modelSha,
      input: 'pixel_values',
      output: 'predicted_depth',
      input_shape: ['batch', '3', 'height', 'width'],
    });
    assert.ok(manifest.tools['onnxruntime-node']);
    // The size rule: short side 518, both sides multiples of 14 (784×518 and 518×686).
    assert.deepEqual(
      metrics.frames.map((f) => [f.width, f.height, f.model_width, f.model_height]),
      [
        [300, 200, 784, 518],
        [360, 480, 518, 686],
        [360, 480, 518, 686],
      ],
    );
    const card = metrics.frames[0];
    assert.ok(card);
    const { data, info } = await sharp(join(prefix, 'depth', card.depth))
      .toColourspace('grey16')
      .raw({ depth: 'ushort' })
      .toBuffer({ resolveWithObject: true });
    assert.deepEqual([info.width, info.height, info.channels], [300, 200, 1]);
    const png = new Uint16Array(data.buffer, data.byteOffset, data.byteLength / 2);
    const value = (x: number, y: number) => card.min + ((png[y * 300 + x] ?? NaN) / 65535) * (card.max - card.min);
    // Far from the edge the channel mean of the normalised colour comes back (RGB order, ImageNet constants).
    const frame = join(prefix, 'filter', card.file);
    for (const [x, colour] of [
      [30, LEFT],
      [270, RIGHT],
    ] as const) {
      const seen = await pixel(frame, x, 100);
      assert.ok(
        seen.every((v, c) => Math.abs(v - (colour[c] ?? NaN)) < 12),
        `card colour kept: ${seen.join(',')}`,
      );
      const expected = expectedMean(seen);
      assert.ok(Math.abs(value(x, 100) - expected) < 2e-3, `${value(x, 100)} vs ${expected}`);
    }
    const preview = await sharp(join(prefix, 'depth', card.preview)).metadata();
    assert.deepEqual([preview.format, preview.width, preview.height], ['jpeg', 300, 200]);
    assert.ok(metrics.frames_per_second > 0);
  });

  it('reads names and a fixed input shape from the model instead of assuming them', async () => {
    const fixed = join(work, 'fixed.onnx');
    await writeFile(
      fixed,
      depthModel({ input: 'image', output: 'depth', inputDims: [1, 3, 56, 84], keepChannel: true }),
    );
    const run = await runStageProcess('depth', {
      input: 'unused',
      prefix,
      params: { model_uri: fixed, batch_size: 8 },
    });
    assert.equal(run.code, 0, run.stderr);
    const metrics = (await readManifest(join(prefix, 'depth', 'manifest.json'))).metrics as unknown as DepthMetrics;
    assert.deepEqual([metrics.model.input, metrics.model.output, metrics.batch_size], ['image', 'depth', 1]);
    assert.deepEqual(metrics.model.input_shape, ['1', '3', '56', '84']);
    assert.ok(metrics.frames.every((f) => f.model_width === 84 && f.model_height === 56));
  });

  it('refuses a model whose sha256 does not match, and leaves no manifest', async () => {
    const run = await runStageProcess('depth', {
      input: 'unused',
      prefix,
      params: { model_uri: model, model_sha256: '0'.repeat(64) },
    });
    assert.equal(run.code, 2);
    assert.match(run.stderr, /^depth failed: the depth model's sha256 is [0-9a-f]{64}, expected 0{64}\n$/);
    assert.equal(existsSync(join(prefix, 'depth', 'manifest.json')), false);
  });

  it('refuses to run without a configured model, and takes the image default from the environment', async () => {
    const none = await runStageProcess('depth', { input: 'unused', prefix });
    assert.equal(none.code, 2);
    assert.match(none.stderr, /no depth model configured/);
    const fromEnv = await runStageProcess('depth', {
      input: 'unused',
      prefix,
      env: { SPLATFLOW_DEPTH_MODEL_URI: model, SPLATFLOW_DEPTH_MODEL_SHA256: modelSha },
    });
    assert.equal(fromEnv.code, 0, fromEnv.stderr);
  });

  it('refuses a file that is not an ONNX model with a one-line cause', async () => {
    const junk = join(work, 'junk.onnx');
    await writeFile(junk, 'not a model');
    const run = await runStageProcess('depth', { input: 'unused', prefix, params: { model_uri: junk } });
    assert.equal(run.code, 2);
    assert.equal(run.stderr.trim().split('\n').length, 1, run.stderr);
    assert.match(run.stderr, /the depth model cannot be loaded/);
  });
});

describe('depth geometry', () => {
  it('sizes like Depth-Anything-V2: lower-bound 518, multiples of 14', () => {
    assert.deepEqual(modelInputSize(1920, 1080), { width: 924, height: 518 });
    assert.deepEqual(modelInputSize(720, 960), { width: 518, height: 686 });
    assert.deepEqual(modelInputSize(518, 518), { width: 518, height: 518 });
  });

  it('bilinear resize with half-pixel centres keeps a linear ramp linear and the corners clamped', () => {
    const out = resizeBilinear(new Float32Array([0, 1]), 2, 1, 4, 1);
    assert.deepEqual([...out], [0, 0.25, 0.75, 1]);
  });

  it('batches only consecutive frames of one size, up to the batch size', () => {
    const f = (w: number) => ({ model: { width: w, height: 14 } });
    const groups = batches([f(1), f(1), f(1), f(2), f(1)], 2).map((g) => g.map((x) => x.model.width));
    assert.deepEqual(groups, [[1, 1], [1], [2], [1]]);
  });
});
