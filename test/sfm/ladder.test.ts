/**
 * The sfm ladder driven by planted failures in real handheld footage (room.mp4, its fast pan and
 * blur included), through frames → filter → sfm with the real entry point, ffmpeg and COLMAP:
 * what each rung did is in the manifest's `ladder`, and the stage either goes on saying so or
 * refuses naming what it tried. Frames and SIFT at 480 px keep each clip to a minute or less on
 * an idle 2-core machine (the file: 4.8 min at load 7-8).
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FilterMetrics } from '../../jobs/filter/stage.js';
import type { FramesMetrics } from '../../jobs/frames/stage.js';
import { readSparseModel } from '../../jobs/sfm/colmap-model.js';
import { runSfm } from '../../jobs/sfm/run-sfm.js';
import { sfmParamsSchema, type SfmMetrics } from '../../jobs/sfm/schema.js';
import { sharedData } from '../support/data.js';
import { clipPart, cutClip } from '../support/media.js';
import { stageParams } from '../support/params.js';
import { readManifest, runStageProcess } from '../support/stage-process.js';

let work: string;
before(async () => {
  work = await mkdtemp(join(tmpdir(), 'ladder-test-'));
});
after(() => rm(work, { recursive: true, force: true }));

const SFM = { max_image_size: 480, undistort_max_image_size: 160, num_threads: 2 };

/** frames → filter on `clip` into a fresh request prefix, answered with the frames stage's metrics. */
async function framesAndFilter(clip: string, name: string, frames: Record<string, unknown>) {
  const prefix = join(work, name) + '/';
  for (const [stage, params] of [
    ['frames', { max_long_side: 480, min_frames: 5, ...frames }],
    ['filter', { min_frames: 5 }],
  ] as const) {
    const run = await runStageProcess(stage, { input: clip, prefix, params });
    assert.equal(run.code, 0, run.stderr);
  }
  const metrics = (await readManifest(join(prefix, 'frames', 'manifest.json'))).metrics as unknown as FramesMetrics;
  return { prefix, frames: metrics };
}

const sfmMetrics = async (prefix: string) =>
  (await readManifest(join(prefix, 'sfm', 'manifest.json'))).metrics as unknown as SfmMetrics;

describe('a cut to unrelated content (6 s of room.mp4, then 6 s of the watch slideshow)', () => {
  const CUT_S = 6;
  let clip: string;
  let prefix: string;
  let frames: FramesMetrics;

  before(async () => {
    clip = join(work, 'cut.mp4');
    await cutClip(
      clip,
      { video: sharedData('room', 'room.mp4'), from: 10, seconds: CUT_S },
      { video: sharedData('watch', 'watch_orbit.mp4'), seconds: CUT_S },
      { width: 854, height: 480, fps: 30 },
    );
    ({ prefix, frames } = await framesAndFilter(clip, 'cut', { target_frames: 24 }));
  });

  it('climbs the ladder, then goes on with the room alone, marked partial, every registered frame before the cut', async (t) => {
    const run = await runStageProcess('sfm', { input: clip, prefix, params: SFM }, 300_000);
    assert.equal(run.code, 0, run.stderr);
    const sfm = await sfmMetrics(prefix);
    t.diagnostic(JSON.stringify(sfm));
    const room = frames.frames.filter((f) => (f.time_s ?? Infinity) < CUT_S);
    assert.ok(
      room.length >= 10 && frames.count - room.length >= 10,
      `${room.length} of ${frames.count} before the cut`,
    );
    assert.deepEqual(
      sfm.ladder.map((r) => [r.rung, r.outcome]),
      [
        ['planned', 'below_gate'],
        ['denser', 'below_gate'],
        ['other_mapper', 'below_gate'],
      ],
    );
    // Between the slideshow's photos the video holds only copies of them: few or no frames to add.
    assert.match(sfm.ladder[1]!.note, /exhaustive matching/);
    assert.equal(sfm.ladder[2]!.note, 'incremental instead of global');
    // The partial_min_share policy (0.4 by default): half the clip registers, so training goes on, saying so.
    assert.equal(sfm.partial, true);
    assert.ok(sfm.registered_share >= 0.4 && sfm.registered_share < 0.6, `${sfm.registered_share}`);
    const model = await readSparseModel(join(prefix, 'sfm', 'sparse', '0'));
    const time = new Map(frames.frames.map((f) => [f.file, f.time_s ?? Infinity]));
    const registered = model.images.map((i) => i.name.replace('_m.jpg', '.jpg'));
    assert.ok(
      registered.every((name) => (time.get(name) ?? Infinity) < CUT_S),
      'a watch frame joined the room',
    );
    assert.ok(registered.length >= 0.9 * room.length, `${registered.length} of ${room.length} room frames`);
  });
});

describe('a span of planted blur (10 s of room.mp4, 3 s of it blurred past recognition)', () => {
  it('follows the ladder: passes on the first rung that meets the gate, or refuses naming each rung and what to change', async (t) => {
    const clip = join(work, 'blur.mp4');
    await clipPart(clip, sharedData('room', 'room.mp4'), { from: 8, seconds: 10, blur: { from: 3.5, to: 6.5 } });
    const { prefix } = await framesAndFilter(clip, 'blur', { target_frames: 10 });
    const filter = (await readManifest(join(prefix, 'filter', 'manifest.json'))).metrics as unknown as FilterMetrics;
    // The filter keeps the blurred frames (nothing better is near them): the gap is the sfm stage's to meet.
    assert.equal(filter.count_kept, filter.count_in);
    const run = await runStageProcess(
      'sfm',
      { input: clip, prefix, params: { ...SFM, partial_min_share: 0.6 } },
      300_000,
    );
    t.diagnostic(run.code === 0 ? JSON.stringify(await sfmMetrics(prefix)) : run.stderr);
    // How much of a blurred span a mapper bridges is not deterministic on two threads: with COLMAP 3.8's incremental
    // mapper the same 34 planned frames registered 14, 14 and 31 in three runs, and the 51 of the denser rung 14 and
    // 46. Whatever it does, the stage must follow its ladder: climb only from a rung below the gate, pass on the
    // first rung that meets it (with added frames once past the planned rung), or refuse naming each rung and what
    // to change.
    if (run.code === 0) {
      const sfm = await sfmMetrics(prefix);
      const outcomes = sfm.ladder.map((r) => r.outcome);
      const passedAt = outcomes.length - 1;
      assert.deepEqual(
        sfm.ladder.map((r) => r.rung),
        ['planned', 'denser', 'other_mapper'].slice(0, outcomes.length),
      );
      assert.deepEqual(outcomes, [...Array<string>(passedAt).fill('below_gate'), 'passed'], JSON.stringify(sfm));
      assert.ok(sfm.registered_share >= 0.6, JSON.stringify(sfm));
      assert.equal(sfm.images_added > 0, passedAt > 0, JSON.stringify(sfm));
      assert.equal(sfm.partial, false);
    } else {
      assert.equal(run.code, 2, run.stderr);
      const lines = run.stderr.trim().split('\n');
      assert.equal(lines.length, 1, run.stderr);
      assert.match(
        lines[0]!,
        /^sfm failed: only \d+ of \d+ frames registered \(at least 60% needed\): .* Tried: planned: the planned matcher and mapper, \d+ of \d+ registered; denser: \d+ denser frames around \d+ unregistered, exhaustive matching, \d+ of \d+ registered; other_mapper: incremental instead of global, \d+ of \d+ registered\. To change: film again more slowly/,
      );
    }
  });
});

describe('frames too far apart for the matcher (12 s of room.mp4 over its fast pan, chosen at max_step 0.6)', () => {
  it('the denser rung adds frames of the same video between the unregistered ones and registers more than the plan', async (t) => {
    const clip = join(work, 'sparse.mp4');
    await clipPart(clip, sharedData('room', 'room.mp4'), { from: 0, seconds: 12 });
    // A selection three times sparser than the default stands in for a motion estimate that fell short.
    const { prefix } = await framesAndFilter(clip, 'sparse', { target_frames: 10, max_step: 0.6 });
    const filter = (await readManifest(join(prefix, 'filter', 'manifest.json'))).metrics as unknown as FilterMetrics;
    const run = await runStageProcess('sfm', { input: clip, prefix, params: SFM }, 300_000);
    assert.equal(run.code, 0, run.stderr);
    const sfm = await sfmMetrics(prefix);
    t.diagnostic(JSON.stringify(sfm));
    const [planned, denser] = sfm.ladder;
    assert.equal(planned?.outcome, 'below_gate');
    assert.equal(planned.images, filter.count_kept);
    assert.equal(denser?.rung, 'denser');
    assert.ok(denser.images > planned.images, `${denser.images - planned.images} frames added`);
    assert.ok(denser.registered > planned.registered, `${denser.registered} against ${planned.registered}`);
    // The best rung's model is the one kept (the other mapper's, when the denser rung stayed below the gate and it
    // registered more), its added frames counted, and on the video's one camera.
    assert.equal(sfm.images_input, denser.images);
    assert.equal(sfm.images_added, denser.images - planned.images);
    assert.equal(sfm.images_registered, Math.max(...sfm.ladder.map((r) => r.registered)));
    assert.equal(sfm.cameras, 1);
    assert.equal(sfm.partial, sfm.ladder.at(-1)!.outcome === 'below_gate');
    const model = await readSparseModel(join(prefix, 'sfm', 'sparse', '0'));
    assert.ok(
      model.images.some((i) => i.name.endsWith('_m.jpg')),
      'no added frame registered',
    );
  });
});

describe("the other mapper (watch photos 9-24 as one camera's frames, a gate of all of them)", () => {
  it('runs the real incremental mapper on the same matches when the global one falls below the gate, and keeps the better model', async (t) => {
    const dirs = {
      imagesDir: join(work, 'om', 'images'),
      outDir: join(work, 'om', 'out'),
      scratchDir: join(work, 'om', 'scratch'),
    };
    for (const dir of Object.values(dirs)) await mkdir(dir, { recursive: true });
    for (let n = 9; n <= 24; n++) {
      const name = `watch_${String(n).padStart(2, '0')}.jpg`;
      await symlink(sharedData('watch', 'images', name), join(dirs.imagesDir, name));
    }
    // A gate of every frame, which neither mapper reaches here (measured: 15 of 16 each), so both rungs run; any
    // model is still used (partial), so the stage's choice between the two can be seen. One thread and the default
    // seed make the run repeat exactly.
    const result = await runSfm({
      ...dirs,
      params: stageParams(sfmParamsSchema, {
        input_kind: 'video',
        max_image_size: 640,
        undistort_max_image_size: 160,
        num_threads: 1,
        min_registered_share: 1,
        partial_min_share: 0,
      }),
    });
    const m = result.metrics;
    t.diagnostic(JSON.stringify(m));
    assert.deepEqual(
      m.ladder.map((r) => [r.rung, r.mapper, r.outcome]),
      [
        ['planned', 'global', 'below_gate'],
        ['denser', null, 'skipped'],
        ['other_mapper', 'incremental', 'below_gate'],
      ],
    );
    assert.equal(m.ladder[2]!.note, 'incremental instead of global');
    // Without densify there is nothing to add and the planned exhaustive matching already saw every pair.
    assert.equal(m.ladder[2]!.matcher, 'exhaustive');
    const [planned, other] = [m.ladder[0]!, m.ladder[2]!];
    assert.ok(planned.registered > 0 && other.registered > 0, `${planned.registered} and ${other.registered} of 16`);
    const better =
      other.registered > planned.registered ||
      (other.registered === planned.registered && other.points > planned.points)
        ? other
        : planned;
    assert.deepEqual([m.mapper, m.images_registered, m.points], [better.mapper, better.registered, better.points]);
    assert.equal(m.partial, true);
  });
});
