/**
 * The filter stage on real photos with planted bad frames, run as frames → filter through the
 * real entry point; and its rules and scores checked against independent computations.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { decide, type FilterRules } from '../../jobs/filter/decide.js';
import type { FilterMetrics } from '../../jobs/filter/stage.js';
import { dHash, hammingDistance, type ImageScores } from '../../jobs/image/scores.js';
import { laplacianVariance } from '../../jobs/image/sharpness.js';
import type { FramesMetrics } from '../../jobs/frames/stage.js';
import { ffmpeg, panClip, SCEAUX_PHOTOS, WATCH_PHOTO } from '../support/media.js';
import { readManifest, runStageProcess } from '../support/stage-process.js';

let work: string;
before(async () => {
  work = await mkdtemp(join(tmpdir(), 'filter-test-'));
});
after(() => rm(work, { recursive: true, force: true }));

describe('filter on real photos with planted bad frames', () => {
  it('drops every planted blurred, dark, blown-out and duplicate frame and keeps every good one', async () => {
    const dir = join(work, 'photos');
    await mkdir(dir, { recursive: true });
    const photo = (n: number) => sharp(WATCH_PHOTO(n)).resize(360, 480);
    // 14 real photos around the clock, every third one so neighbours differ.
    const plan: { name: string; make: () => ReturnType<typeof sharp>; planted?: string }[] = [];
    for (let i = 0; i < 14; i++) plan.push({ name: `good-${i}`, make: () => photo(1 + 3 * i) });
    plan.splice(3, 0, { name: 'blurred', make: () => photo(10).blur(5), planted: 'blurred' });
    plan.splice(7, 0, { name: 'dark', make: () => photo(17).linear(0.12, 0), planted: 'underexposed' });
    plan.splice(11, 0, { name: 'blown', make: () => photo(26).linear(2.6, 40), planted: 'overexposed' });
    // Right after good-10 (photo 31): the same view, re-encoded at a lower quality.
    const afterGood10 = plan.findIndex((p) => p.name === 'good-10') + 1;
    plan.splice(afterGood10, 0, {
      name: 'duplicate',
      make: () => photo(31).jpeg({ quality: 70 }),
      planted: 'duplicate',
    });
    for (const [i, entry] of plan.entries()) {
      await entry
        .make()
        .jpeg()
        .toFile(join(dir, `${String(i).padStart(2, '0')}-${entry.name}.jpg`));
    }

    const prefix = join(work, 'req') + '/';
    const frames = await runStageProcess('frames', { input: dir, prefix, params: { min_frames: 5 } });
    assert.equal(frames.code, 0, frames.stderr);
    const run = await runStageProcess('filter', { input: dir, prefix, params: { min_frames: 5 } });
    assert.equal(run.code, 0, run.stderr);

    const manifest = await readManifest(join(prefix, 'filter', 'manifest.json'));
    const metrics = manifest.metrics as unknown as FilterMetrics;
    assert.equal(metrics.count_in, plan.length);
    // A planted frame may earn a second reason (darkening also lowers contrast, hence sharpness).
    const verdicts = metrics.frames.map((f, i) => {
      const planted = plan[i]?.planted;
      return [plan[i]?.name, f.kept ? 'kept' : planted && f.reasons.includes(planted as never) ? planted : f.reasons];
    });
    assert.deepEqual(
      verdicts,
      plan.map((p) => [p.name, p.planted ?? 'kept']),
    );
    // Only kept frames are outputs, and the inputs are the frames stage's outputs with checksums.
    assert.deepEqual(
      manifest.outputs.map((o) => o.path),
      metrics.frames.filter((f) => f.kept).map((f) => f.file),
    );
    assert.equal(manifest.inputs.length, plan.length);
    assert.ok(existsSync(join(prefix, 'filter', metrics.frames[0]?.file ?? '')));
  });

  it('a video with a planted span of blur: no frame is dropped and no gap opens wider than the selection made', async () => {
    const sharpClip = join(work, 'pan.mp4');
    await panClip(sharpClip, join(SCEAUX_PHOTOS, '100_7105.JPG'), {
      width: 240,
      height: 180,
      seconds: 8,
      fps: 10,
      speed: 0.25,
    });
    // 2.5 s to 4.5 s heavily blurred (a fifth of the clip), as a shaky hand gives.
    const clip = join(work, 'pan-blur.mp4');
    await ffmpeg('-i', sharpClip, '-vf', "boxblur=6:enable='between(t,2.5,4.5)'", '-pix_fmt', 'yuv420p', clip);
    const prefix = join(work, 'blur-video') + '/';
    const frames = await runStageProcess('frames', {
      input: clip,
      prefix,
      params: { target_frames: 16, min_frames: 5 },
    });
    assert.equal(frames.code, 0, frames.stderr);
    const run = await runStageProcess('filter', { input: clip, prefix, params: { min_frames: 5 } });
    assert.equal(run.code, 0, run.stderr);
    const chosen = (await readManifest(join(prefix, 'frames', 'manifest.json'))).metrics as unknown as FramesMetrics;
    const metrics = (await readManifest(join(prefix, 'filter', 'manifest.json'))).metrics as unknown as FilterMetrics;
    assert.equal(metrics.source, 'video');
    assert.equal(metrics.count_kept, metrics.count_in, 'nothing dropped from a video for blur');
    const blurred = metrics.frames.filter((f) => f.reasons.includes('blurred') || f.replaced_sharpness !== undefined);
    assert.ok(blurred.length > 0, 'the planted blur was seen');
    assert.ok(blurred.every((f) => f.kept && (f.kept_for_coverage || f.replaced_sharpness !== undefined)));
    // The widest gap left is no wider than the widest step the selection itself made.
    const widest = Math.max(...chosen.frames.map((f) => f.step ?? 0));
    assert.ok((metrics.max_gap ?? Infinity) <= widest + 1e-9, `gap ${metrics.max_gap}, widest step ${widest}`);
  });

  it('refuses to run before the frames stage has finished', async () => {
    const run = await runStageProcess('filter', { input: 'unused', prefix: join(work, 'nothing') + '/' });
    assert.equal(run.code, 2);
    assert.match(run.stderr, /^filter failed: stage frames has not finished: no .*frames\/manifest\.json\n$/);
  });
});

describe('filter rules', () => {
  const rules: FilterRules = {
    sharpness_ratio: 0.35,
    dark_ratio: 0.5,
    bright_ratio: 0.6,
    clipped_max: 0.25,
    duplicate_max_distance: 2,
    min_frames: 4,
  };
  const frame = (sharpness: number, dhash: string): ImageScores => ({
    sharpness,
    brightness: 120,
    shadows: 0,
    highlights: 0,
    dhash,
  });

  it('never keeps fewer than min_frames: the sharpest dropped frames come back, marked reinstated', () => {
    // Median 52.5: the last three are blurred; the sharpest of them comes back to make four.
    const scores = [
      frame(100, '0'),
      frame(110, 'f'),
      frame(100, 'ff'),
      frame(5, 'fff'),
      frame(4, 'ffff'),
      frame(3, 'fffff'),
    ];
    const { decisions } = decide(scores, rules);
    assert.deepEqual(
      decisions.map((d) => [d.kept, d.reinstated]),
      [
        [true, false],
        [true, false],
        [true, false],
        [true, true],
        [false, false],
        [false, false],
      ],
    );
  });

  it('judges sharpness against the clip itself: a uniformly soft clip keeps everything', () => {
    const scores = [12, 10, 11, 9, 13].map((s, i) => frame(s, (0xffn << BigInt(8 * i)).toString(16)));
    assert.ok(decide(scores, rules).decisions.every((d) => d.kept));
  });
});

describe('image scores', () => {
  it('Laplacian variance agrees with libvips convolving in 16 bits (the docs/machine-notes.md recipe)', async () => {
    const image = sharp(WATCH_PHOTO(5)).resize(360, 480).greyscale();
    const { data, info } = await image.clone().raw().toBuffer({ resolveWithObject: true });
    const ours = laplacianVariance({ data, width: info.width, height: info.height });
    const conv = await image
      .clone()
      .convolve({ width: 3, height: 3, kernel: [0, 1, 0, 1, -4, 1, 0, 1, 0] })
      .raw({ depth: 'short' })
      .toBuffer({ resolveWithObject: true });
    const values = new Int16Array(conv.data.buffer, conv.data.byteOffset, conv.data.byteLength / 2);
    // Interior pixels only, like ours (libvips extends the border differently).
    const interior: number[] = [];
    for (let y = 1; y < info.height - 1; y++) {
      for (let x = 1; x < info.width - 1; x++) interior.push(values[y * info.width + x] ?? 0);
    }
    const mean = interior.reduce((a, b) => a + b, 0) / interior.length;
    const reference = interior.reduce((a, b) => a + (b - mean) ** 2, 0) / interior.length;
    assert.ok(Math.abs(ours - reference) / reference < 1e-6, `${ours} vs ${reference}`);
  });

  it('dHash sees a re-encoded copy as the same view and the next photo as another', async () => {
    const a = join(work, 'a.jpg');
    const b = join(work, 'b.jpg');
    const c = join(work, 'c.jpg');
    await sharp(WATCH_PHOTO(20)).jpeg({ quality: 95 }).toFile(a);
    await sharp(WATCH_PHOTO(20)).resize(540, 720).jpeg({ quality: 60 }).toFile(b);
    await sharp(WATCH_PHOTO(23)).jpeg({ quality: 95 }).toFile(c);
    assert.ok(hammingDistance(await dHash(a), await dHash(b)) <= 2);
    assert.ok(hammingDistance(await dHash(a), await dHash(c)) > 4);
  });
});
