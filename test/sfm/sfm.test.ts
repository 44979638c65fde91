import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { mkdtemp, mkdir, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { ModelFormatError, parseCamerasBin, readSparseModel, type SparseModel } from '../../jobs/sfm/colmap-model.js';
import {
  otherMapper,
  planMapper,
  planMatching,
  qualityProblem,
  rescueMatching,
  usablePartial,
} from '../../jobs/sfm/plan.js';
import { DEFAULT_PYTHON, runSfm, SfmQualityError, type SfmResult } from '../../jobs/sfm/run-sfm.js';
import { sfmParamsSchema, type SfmMetrics, type SfmParams } from '../../jobs/sfm/schema.js';
import { InputRefused } from '../../jobs/runtime/errors.js';
import { exec } from '../../jobs/runtime/exec.js';
import { sharedData } from '../support/data.js';
import { stageParams } from '../support/params.js';

const params = (raw: Partial<SfmParams> = {}) => stageParams(sfmParamsSchema, raw);
// The interpreter runSfm uses when given none.
const python = DEFAULT_PYTHON;
const VOCAB_TREE = fileURLToPath(new URL('../../../test/sfm/vocab_tree.py', import.meta.url));

let root: string;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'splatflow-sfm-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

async function folders(name: string) {
  const dirs = {
    imagesDir: join(root, name, 'images'),
    outDir: join(root, name, 'out'),
    scratchDir: join(root, name, 'scratch'),
  };
  for (const dir of Object.values(dirs)) await mkdir(dir, { recursive: true });
  return dirs;
}

// Photos 11-22 sweep around the clock from below in small steps (1-8 are near-frontal with little baseline).
const FRAMES = Array.from({ length: 12 }, (_, i) => `watch_${String(i + 11).padStart(2, '0')}.jpg`);

describe("COLMAP 4's global mapper on real photos (12 consecutive photos of the watch orbit)", () => {
  let result: SfmResult;
  let dirs: Awaited<ReturnType<typeof folders>>;
  const progress: number[] = [];

  before(async () => {
    dirs = await folders('watch');
    for (const name of FRAMES) await symlink(sharedData('watch', 'images', name), join(dirs.imagesDir, name));
    // Phone photos: exhaustive matching, a camera per photo; SIFT at 960 px keeps this fast on 2 cores.
    result = await runSfm({
      ...dirs,
      params: params({
        input_kind: 'images',
        mapper: 'global',
        max_image_size: 960,
        undistort_max_image_size: 480,
        num_threads: 2,
      }),
      progress: (f) => progress.push(f),
    });
  });

  it('registers most frames with a small reprojection error and records its choices', (t) => {
    const m = result.metrics;
    t.diagnostic(JSON.stringify({ metrics: m, timings: result.timings }));
    assert.equal(m.images_input, 12);
    // Threaded RANSAC varies between runs; measured here with COLMAP 4.2.1: 12 of 12, 318 points, 0.88 px.
    assert.ok(m.images_registered >= 10, `registered ${m.images_registered} of 12`);
    assert.equal(m.registered_share, m.images_registered / 12);
    assert.ok(m.points >= 200, `${m.points} points`);
    assert.ok(
      m.mean_reprojection_error_px > 0 && m.mean_reprojection_error_px < 1.5,
      `${m.mean_reprojection_error_px} px`,
    );
    assert.ok(m.mean_track_length >= 2);
    assert.deepEqual([m.matcher, m.loop_detection, m.vocab_tree, m.mapper], ['exhaustive', false, null, 'global']);
    assert.deepEqual(
      m.ladder.map((r) => [r.rung, r.mapper, r.outcome]),
      [['planned', 'global', 'passed']],
    );
    // COLMAP gives photos with the same EXIF lens and size one camera.
    assert.ok(m.cameras >= 1 && m.cameras <= m.images_registered);
    assert.match(result.tools['colmap'] ?? '', /^4\.\d+/);
    for (const phase of ['features_s', 'matching_s', 'mapping_s', 'undistortion_s']) {
      assert.ok((result.timings[phase] ?? -1) > 0, phase);
    }
  });

  it('writes PINHOLE images and model for training, one image per registered frame, at the asked size', async () => {
    const model = await readSparseModel(join(dirs.outDir, 'undistorted', 'sparse'));
    assert.ok(model.cameras.length > 0 && model.cameras.every((c) => c.model === 'PINHOLE'));
    const images = (await readdir(join(dirs.outDir, 'undistorted', 'images'))).sort();
    assert.deepEqual(images, model.images.map((i) => i.name).sort());
    assert.equal(images.length, result.metrics.images_registered);
    const { width, height } = await sharp(join(dirs.outDir, 'undistorted', 'images', images[0]!)).metadata();
    assert.ok(Math.max(width, height) <= 480 && Math.max(width, height) >= 400, `${width}×${height}`);
    assert.deepEqual(await readdir(join(dirs.outDir, 'undistorted')).then((e) => e.sort()), ['images', 'sparse']);
  });

  it('parses the text form of the model exactly as the binary form', async () => {
    const binary = await readSparseModel(join(dirs.outDir, 'sparse', '0'));
    const textDir = join(root, 'watch', 'text');
    await mkdir(textDir);
    execFileSync(python, [
      '-c',
      'import sys, pycolmap; pycolmap.Reconstruction(sys.argv[1]).write_text(sys.argv[2])',
      join(dirs.outDir, 'sparse', '0'),
      textDir,
    ]);
    const text = await readSparseModel(textDir);
    // The text writer orders records differently and prints fewer digits.
    const byId = <T extends { id: number }>(items: T[]) => [...items].sort((a, b) => a.id - b.id);
    const round = (model: SparseModel) =>
      JSON.stringify(
        { cameras: byId(model.cameras), images: byId(model.images), points: byId(model.points) },
        (_key, value: unknown) => (typeof value === 'number' ? Number(value.toPrecision(6)) : value),
      );
    assert.equal(round(text), round(binary));
    assert.equal(binary.images.length, result.metrics.images_registered);
    assert.ok(binary.images.every((image) => image.observations > 0));
  });

  it('reports progress from 0 to 1 without going backwards', () => {
    assert.equal(progress[0], 0);
    assert.equal(progress.at(-1), 1);
    assert.ok(progress.every((f, i) => i === 0 || f >= progress[i - 1]!));
    assert.ok(progress.length > 10, `${progress.length} progress reports`);
  });
});

describe('sequential matching with loop detection (the 44 watch photos in capture order, 3 neighbours each)', () => {
  // The capture comes back to the clock's front (photos 2-5, 27-30, 41): only loop detection pairs those views.
  // Photos, matched as a video's frames (one camera): watch_orbit.mp4's own frames, without the photos' EXIF focal
  // length, gained verified pairs from loop detection (54 → 74) but no registered frames at this size.
  const sequence = Array.from({ length: 44 }, (_, i) => `watch_${String(i + 1).padStart(2, '0')}.jpg`);
  const sequential = params({
    input_kind: 'video',
    matcher: 'sequential',
    sequential_overlap: 3,
    max_image_size: 640,
    undistort_max_image_size: 160,
    num_threads: 2,
    // Both runs must reach the comparison; the gate itself is tested above.
    min_registered_share: 0,
    min_points: 0,
  });
  let without: SfmMetrics;
  let withLoops: SfmMetrics;
  let tree: string;
  const progress: number[] = [];

  before(async () => {
    const plain = await folders('sequence');
    for (const name of sequence) await symlink(sharedData('watch', 'images', name), join(plain.imagesDir, name));
    without = (await runSfm({ ...plain, params: sequential })).metrics;
    // A FAISS tree of 256 words from these frames' own features stands in for the container's
    // 256K-word one (COLMAP's tree builder, through pycolmap).
    tree = join(root, 'sequence', 'vocab_tree.bin');
    await exec(python, [VOCAB_TREE, join(plain.scratchDir, 'database.db'), tree, '256']);
    const looped = await folders('sequence-loops');
    for (const name of sequence) await symlink(sharedData('watch', 'images', name), join(looped.imagesDir, name));
    withLoops = (await runSfm({ ...looped, params: sequential, vocabTree: tree, progress: (f) => progress.push(f) }))
      .metrics;
  });

  it('registers more frames with the tree than without: the revisited views join one model', (t) => {
    t.diagnostic(JSON.stringify({ without, withLoops }));
    assert.deepEqual([without.loop_detection, without.vocab_tree], [false, null]);
    assert.deepEqual([withLoops.matcher, withLoops.loop_detection, withLoops.vocab_tree], ['sequential', true, tree]);
    // Measured: 11-12 of 44 without loop detection; with it 29-32 in 7 runs alone, but 15 (434 points against 262)
    // once in a CI run of the whole suite: the small tree's retrieval varies, so only the direction is asserted.
    assert.ok(
      withLoops.images_registered > without.images_registered && withLoops.points > without.points,
      `${withLoops.images_registered} registered (${withLoops.points} points) with loop detection, ${without.images_registered} (${without.points}) without`,
    );
  });

  it('reports progress without going backwards when loop detection restarts its counters', () => {
    assert.ok(progress.every((f, i) => i === 0 || f >= progress[i - 1]!));
    assert.equal(progress.at(-1), 1);
  });
});

describe('repeatability: one thread and a seed (the 12 watch photos, both mappers)', () => {
  it('gives the same model twice, camera poses and points alike; a different seed is allowed to differ', async (t) => {
    const once = async (name: string, mapper: 'global' | 'incremental') => {
      const dirs = await folders(name);
      for (const photo of FRAMES) await symlink(sharedData('watch', 'images', photo), join(dirs.imagesDir, photo));
      const run = await runSfm({
        ...dirs,
        params: params({
          input_kind: 'images',
          mapper,
          max_image_size: 480,
          undistort_max_image_size: 160,
          num_threads: 1,
        }),
      });
      return { metrics: run.metrics, model: await readSparseModel(join(dirs.outDir, 'sparse', '0')) };
    };
    for (const mapper of ['global', 'incremental'] as const) {
      const [a, b] = [await once(`repeat-${mapper}-a`, mapper), await once(`repeat-${mapper}-b`, mapper)];
      t.diagnostic(`${mapper}: ${a.metrics.images_registered} of 12, ${a.metrics.points} points`);
      assert.ok(a.metrics.images_registered >= 9, `${mapper}: ${a.metrics.images_registered} of 12`);
      const { ladder: ladderA, ...restA } = a.metrics;
      const { ladder: ladderB, ...restB } = b.metrics;
      assert.deepEqual(restA, restB);
      assert.deepEqual(
        ladderA.map(({ seconds: _, ...rung }) => rung),
        ladderB.map(({ seconds: _, ...rung }) => rung),
      );
      assert.deepEqual(a.model, b.model);
    }
  });
});

describe('sfm refuses input it cannot reconstruct, with a cause a user can act on', () => {
  it('unrelated images (random noise): nothing registers, so the stage fails and writes no training data', async () => {
    const dirs = await folders('noise');
    for (let i = 0; i < 6; i++) {
      const noise = Buffer.alloc(320 * 240 * 3);
      for (let k = 0; k < noise.length; k++) noise[k] = Math.floor(Math.random() * 256);
      await sharp(noise, { raw: { width: 320, height: 240, channels: 3 } })
        .jpeg()
        .toFile(join(dirs.imagesDir, `noise_${i}.jpg`));
    }
    await assert.rejects(
      runSfm({ ...dirs, params: params({ input_kind: 'images', num_threads: 2 }) }),
      (error: Error) => {
        assert.ok(error instanceof SfmQualityError);
        assert.match(
          error.message,
          /^only \d of 6 images registered \(at least 60% needed\): the photos may not overlap/,
        );
        // The ladder was climbed before refusing, and the cause names every rung.
        assert.match(error.message, /Tried: planned: the planned matcher and mapper, \d of 6 registered; /);
        assert.match(error.message, /denser: skipped \(a photo set has no frames in between/);
        assert.match(
          error.message,
          /other_mapper: incremental instead of global, \d of 6 registered\. To change: add photos/,
        );
        return true;
      },
    );
    assert.deepEqual(await readdir(dirs.outDir), []);
  });

  it('a vocabulary tree that does not exist: refused before any tool runs, naming the path and where it came from', async () => {
    const dirs = await folders('no-tree');
    for (const name of FRAMES.slice(0, 3))
      await symlink(sharedData('watch', 'images', name), join(dirs.imagesDir, name));
    const sequential = params({ matcher: 'sequential' });
    await assert.rejects(runSfm({ ...dirs, params: sequential, vocabTree: '/opt/none/tree.bin' }), (error: Error) => {
      assert.ok(error instanceof InputRefused);
      assert.equal(error.message, 'the vocabulary tree /opt/none/tree.bin (SPLATFLOW_VOCAB_TREE_PATH) does not exist');
      return true;
    });
    await assert.rejects(
      runSfm({
        ...dirs,
        params: { ...sequential, vocab_tree_path: '/tmp/missing.bin' },
        vocabTree: '/opt/none/tree.bin',
      }),
      /^InputRefused: the vocabulary tree \/tmp\/missing\.bin \(vocab_tree_path\) does not exist$/,
    );
    assert.deepEqual(await readdir(dirs.scratchDir), []);
  });

  it('a vocabulary tree in the FLANN format of COLMAP 3.11 or older: refused before any tool runs', async () => {
    const dirs = await folders('flann-tree');
    for (const name of FRAMES.slice(0, 3))
      await symlink(sharedData('watch', 'images', name), join(dirs.imagesDir, name));
    const tree = join(root, 'flann-tree', 'tree.bin');
    // Not a FAISS tree: its first four bytes are no format version (1 or 2).
    await writeFile(tree, Buffer.from('FLANN tree of an older COLMAP'));
    await assert.rejects(
      runSfm({ ...dirs, params: params({ matcher: 'sequential', vocab_tree_path: tree }) }),
      (error: Error) => {
        assert.ok(error instanceof InputRefused);
        assert.match(error.message, /is not in the FAISS format COLMAP 3\.12 and later read/);
        return true;
      },
    );
    assert.deepEqual(await readdir(dirs.scratchDir), []);
  });

  it('too few images: refused before any tool runs', async () => {
    const dirs = await folders('two');
    await writeFile(join(dirs.imagesDir, 'a.jpg'), await readFile(sharedData('watch', 'images', 'watch_01.jpg')));
    await writeFile(join(dirs.imagesDir, 'notes.txt'), 'not an image');
    await assert.rejects(
      runSfm({ ...dirs, params: params() }),
      /only 1 images to reconstruct from \(at least 3 needed\)/,
    );
  });
});

describe('sfm decisions', () => {
  it('matches up to 50 images exhaustively and more sequentially, with loop detection wherever a tree is known', () => {
    const exhaustive = { matcher: 'exhaustive', vocabTree: null };
    const sequential = { matcher: 'sequential', vocabTree: null };
    assert.deepEqual(planMatching(params({ input_kind: 'video' }), 50), exhaustive);
    assert.deepEqual(planMatching(params({ input_kind: 'video' }), 51), sequential);
    assert.deepEqual(planMatching(params({ input_kind: 'images' }), 400), sequential);
    assert.deepEqual(planMatching(params({ matcher: 'sequential' }), 10), sequential);
    assert.deepEqual(planMatching(params({ vocab_tree_path: '/v.bin' }), 400), { ...sequential, vocabTree: '/v.bin' });
    // The container's tree serves when the request names none; the request's wins.
    assert.deepEqual(planMatching(params(), 400, '/image.bin'), { ...sequential, vocabTree: '/image.bin' });
    assert.deepEqual(planMatching(params({ vocab_tree_path: '/v.bin' }), 400, '/image.bin'), {
      ...sequential,
      vocabTree: '/v.bin',
    });
    // Exhaustive matching already sees every pair: no tree is used, so none is recorded.
    assert.deepEqual(planMatching(params({ vocab_tree_path: '/v.bin' }), 50, '/image.bin'), exhaustive);
  });

  it('the ladder: rescue matching is exhaustive up to twice the limit, else sequential with any tree; the other mapper unless the request fixed one', () => {
    const planned = planMatching(params(), 80);
    assert.deepEqual(rescueMatching(params(), planned, 100), { matcher: 'exhaustive', vocabTree: null });
    assert.deepEqual(rescueMatching(params(), planned, 101, '/t.bin'), { matcher: 'sequential', vocabTree: '/t.bin' });
    // A matcher the request fixed stays fixed.
    const fixed = params({ matcher: 'sequential' });
    assert.deepEqual(rescueMatching(fixed, planMatching(fixed, 20), 20), { matcher: 'sequential', vocabTree: null });
    assert.equal(otherMapper('incremental'), 'global');
    assert.equal(otherMapper('global'), 'incremental');
    assert.equal(otherMapper('global', 'global'), undefined);
  });

  it('a model below the gate is used only above partial_min_share and with enough points; the policy can refuse', () => {
    const p = params();
    assert.equal(usablePartial({ registered_share: 0.45, points: 500 }, p), true);
    assert.equal(usablePartial({ registered_share: 0.35, points: 500 }, p), false);
    assert.equal(usablePartial({ registered_share: 0.45, points: 50 }, p), false);
    assert.equal(usablePartial({ registered_share: 0.59, points: 500 }, params({ partial_min_share: 0.6 })), false);
  });

  it('maps globally unless told otherwise', () => {
    assert.equal(planMapper(params()), 'global');
    assert.equal(planMapper(params({ mapper: 'incremental' })), 'incremental');
  });

  it('the quality gate names the counts and the threshold', () => {
    const p = params({ input_kind: 'video' });
    assert.equal(
      qualityProblem({ images_input: 150, images_registered: 23, registered_share: 23 / 150, points: 5000 }, p),
      'only 23 of 150 frames registered (at least 60% needed): the clip may be too fast, too dark or lack overlap: move slowly, keep the subject in view and light it well',
    );
    assert.match(
      qualityProblem({ images_input: 10, images_registered: 10, registered_share: 1, points: 40 }, p) ?? '',
      /^only 40 3D points were reconstructed \(at least 100 needed\)/,
    );
    assert.equal(
      qualityProblem({ images_input: 10, images_registered: 6, registered_share: 0.6, points: 100 }, p),
      undefined,
    );
  });

  it('rejects a truncated model file instead of reading garbage', () => {
    const camera = Buffer.alloc(8 + 4 + 4 + 8 + 8 + 4 * 8);
    camera.writeBigUInt64LE(1n, 0);
    camera.writeInt32LE(2, 12); // SIMPLE_RADIAL: 4 parameters
    assert.equal(parseCamerasBin(camera)[0]?.model, 'SIMPLE_RADIAL');
    assert.throws(() => parseCamerasBin(camera.subarray(0, camera.length - 1)), ModelFormatError);
  });
});
