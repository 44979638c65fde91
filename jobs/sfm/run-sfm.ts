/**
 * The sfm stage over local folders: COLMAP 4 (pycolmap, through engine.py) extracts and matches
 * features, maps with its global or incremental mapper, then, past the quality gate, undistorts
 * to PINHOLE images for training. Below the gate it climbs a ladder before refusing (plan.ts):
 * denser frames of the video around the spans that did not register, matched again
 * (exhaustively where the count allows, with loop detection where a tree exists); then the other
 * mapper, unless the request fixed one. Every rung goes into
 * the metrics' `ladder`; the best model found wins. The runtime downloads the
 * filter stage's frames into `imagesDir` and uploads `outDir` as `{request}/sfm/`:
 *   sparse/0/                the reconstruction in the frames' original (distorted) camera model
 *   undistorted/images/      PINHOLE images the train stage reads
 *   undistorted/sparse/      the matching PINHOLE model
 */
import { existsSync } from 'node:fs';
import { cp, mkdir, open, readdir, rm } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readSparseModel, type SparseModel } from './colmap-model.js';
import {
  largestModel,
  ladderAdvice,
  modelMetrics,
  otherMapper,
  planMapper,
  planMatching,
  qualityProblem,
  rescueMatching,
  singleCamera,
  usablePartial,
  type MatchPlan,
} from './plan.js';
import { exec } from '../runtime/exec.js';
import { InputRefused } from '../runtime/errors.js';
import type { LadderRung, Mapper, SfmMetrics, SfmParams } from './schema.js';

/** The frames cannot give a usable reconstruction; the message tells the user what to change. */
export class SfmQualityError extends Error {
  override name = 'SfmQualityError';
}

export interface SfmInput {
  imagesDir: string;
  outDir: string;
  /** Private working folder (the feature database lives here). */
  scratchDir: string;
  params: SfmParams;
  progress?: (fraction: number) => void;
  /** SIFT on the GPU; default: when an NVIDIA device is attached. */
  gpu?: boolean;
  /** The interpreter with pycolmap (`SPLATFLOW_PYTHON`); default: the repository's `.venv`. */
  python?: string;
  /** The image's vocabulary tree (`SPLATFLOW_VOCAB_TREE_PATH`), for when `params.vocab_tree_path` is empty. */
  vocabTree?: string;
  /**
   * Video only: writes more frames of the video into `imagesDir` around the given frames (those
   * that did not register, by file name) and answers the new files' names; none, no denser rung.
   */
  densify?: (unregistered: readonly string[]) => Promise<string[]>;
}

export interface SfmResult {
  metrics: SfmMetrics;
  tools: Record<string, string>;
  timings: Record<string, number>;
  outputs: { sparse: string; undistortedImages: string; undistortedSparse: string };
}

const IMAGE_FILE = /\.(jpe?g|png)$/i;

function skipped(rung: LadderRung['rung'], note: string): LadderRung {
  return {
    rung,
    matcher: null,
    loop_detection: false,
    mapper: null,
    images: 0,
    registered: 0,
    points: 0,
    seconds: 0,
    outcome: 'skipped',
    note,
  };
}
const MIN_IMAGES = 3;

async function listImages(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => (entry.isFile() || entry.isSymbolicLink()) && IMAGE_FILE.test(entry.name))
    .map((entry) => relative(dir, join(entry.parentPath, entry.name)))
    .sort();
}

/** COLMAP 4's FAISS trees start with their format version, 1 or 2 (retrieval/visual_index.cc checks the same). */
async function isFaissTree(path: string): Promise<boolean> {
  const file = await open(path, 'r');
  try {
    const { buffer, bytesRead } = await file.read(Buffer.alloc(4), 0, 4, 0);
    return bytesRead === 4 && [1, 2].includes(buffer.readInt32LE(0));
  } finally {
    await file.close();
  }
}

/** `[12/40]` in COLMAP's progress lines ("Processed file [12/40]", "Processing image [3/40]"). */
function counter(line: string): { done: number; total: number } | undefined {
  const match = /\[(\d+)\/(\d+)/.exec(line);
  return match ? { done: Number(match[1]), total: Number(match[2]) } : undefined;
}

const ENGINE = fileURLToPath(new URL('../../../jobs/sfm/engine.py', import.meta.url));
/** local/setup's virtual environment, at the repository root. */
export const DEFAULT_PYTHON = fileURLToPath(new URL('../../../.venv/bin/python', import.meta.url));

/** One engine.py operation; `onLine` sees COLMAP's log lines (stderr), where the progress counters are. */
async function runEngine(
  python: string,
  operation: string,
  spec: Record<string, unknown>,
  onLine: (line: string) => void = () => {},
): Promise<Record<string, unknown>> {
  const { stdout } = await exec(python, [ENGINE, operation, JSON.stringify(spec)], { onStderrLine: onLine });
  return JSON.parse(stdout.toString('utf8').trim().split('\n').at(-1) ?? '{}') as Record<string, unknown>;
}

export async function runSfm(input: SfmInput): Promise<SfmResult> {
  const { imagesDir, outDir, scratchDir, params } = input;
  const report = input.progress ?? (() => {});
  const python = input.python ?? DEFAULT_PYTHON;
  const timings: Record<string, number> = {};
  // Rescue rungs add to the phase times and hold progress where the planned pass left it.
  let quiet = false;
  const timed = async <T>(phase: string, from: number, to: number, work: (step: (f: number) => void) => Promise<T>) => {
    const started = performance.now();
    if (!quiet) report(from);
    // Never backwards: the mapper's registered count restarts when it tries another initial pair.
    let last = 0;
    const result = await work((f) => {
      last = Math.max(last, Math.min(1, Math.max(0, f)));
      if (!quiet) report(from + (to - from) * last);
    });
    timings[phase] = Math.round((timings[phase] ?? 0) * 1000 + performance.now() - started) / 1000;
    if (!quiet) report(to);
    return result;
  };

  let images = await listImages(imagesDir);
  if (images.length < MIN_IMAGES) {
    throw new SfmQualityError(`only ${images.length} images to reconstruct from (at least ${MIN_IMAGES} needed)`);
  }
  const planned = planMatching(params, images.length, input.vocabTree);
  // COLMAP would abort only after extraction and the sequential pass, a crash Cloud Run retries in vain.
  if (planned.vocabTree !== null) {
    const source = params.vocab_tree_path ? 'vocab_tree_path' : 'SPLATFLOW_VOCAB_TREE_PATH';
    if (!existsSync(planned.vocabTree))
      throw new InputRefused(`the vocabulary tree ${planned.vocabTree} (${source}) does not exist`);
    if (!(await isFaissTree(planned.vocabTree)))
      throw new InputRefused(
        `the vocabulary tree ${planned.vocabTree} (${source}) is not in the FAISS format COLMAP 3.12 and later read (a FLANN tree of COLMAP 3.11 or older?)`,
      );
  }
  const mapper = planMapper(params);
  const database = join(scratchDir, 'database.db');
  const mappedRoot = join(scratchDir, 'sparse');
  // A rerun starts clean: stale matches or models from an earlier attempt must not leak into this one.
  await rm(mappedRoot, { recursive: true, force: true });
  await mkdir(mappedRoot, { recursive: true });
  await rm(database, { force: true });
  // What every operation shares: threads, the seed (engine.py), SIFT on the GPU where the image has one.
  const common = {
    num_threads: params.num_threads,
    seed: params.random_seed,
    gpu: input.gpu ?? existsSync('/dev/nvidiactl'),
  };
  const version = await runEngine(python, 'version', {});
  const tools: Record<string, string> = { colmap: String(version['colmap']), pycolmap: String(version['pycolmap']) };

  /**
   * Features for `list` only: a rung that adds frames extracts just the new ones into the same
   * database. A video's added frames join its one camera (the fresh database's camera 1): a second
   * extraction would otherwise give them a camera of their own, and the mapper two lenses to solve.
   */
  const extract = async (list: readonly string[], added: boolean) => {
    await timed('features_s', 0, 0.3, (step) =>
      runEngine(
        python,
        'extract',
        {
          ...common,
          database,
          images: imagesDir,
          image_names: list,
          camera_model: params.camera_model,
          single_camera: singleCamera(params),
          existing_camera_id: added && singleCamera(params) ? 1 : null,
          max_image_size: params.max_image_size,
        },
        (line) => {
          const c = counter(line);
          if (c && line.includes('Processed file')) step(c.done / c.total);
        },
      ),
    );
  };

  /** COLMAP's matchers skip pairs the database already holds, so a later rung pays only for new pairs. */
  const match = async (plan: MatchPlan) => {
    // Loop detection indexes every image, then matches every tenth with its look-alikes: its
    // counters restart, so only the sequential pass before it measures progress.
    let loopPass = false;
    await timed('matching_s', 0.3, 0.55, (step) =>
      runEngine(
        python,
        'match',
        { ...common, database, matcher: plan.matcher, overlap: params.sequential_overlap, vocab_tree: plan.vocabTree },
        (line) => {
          if (line.includes('Indexing image')) loopPass = true;
          const c = counter(line);
          if (c && !loopPass && /(Processing|Matching) (block|image)/.test(line)) step(c.done / c.total);
        },
      ),
    );
  };

  /** Maps into a fresh folder and answers its largest model (undefined: none). */
  const map = async (which: Mapper, name: string) => {
    const mapped = join(mappedRoot, name);
    await mkdir(mapped, { recursive: true });
    // No model at all is no failure here: it is the gate's verdict below.
    await timed('mapping_s', 0.55, 0.85, (step) =>
      runEngine(
        python,
        'map',
        {
          ...common,
          mapper: which,
          database,
          images: imagesDir,
          output: mapped,
          abs_pose_min_num_inliers: params.abs_pose_min_num_inliers,
          abs_pose_min_inlier_ratio: params.abs_pose_min_inlier_ratio,
          tri_min_angle: params.tri_min_angle,
          ba_global_max_num_iterations: params.ba_global_max_num_iterations,
          view_graph_calibration: params.view_graph_calibration,
        },
        // The incremental mapper counts the frames it has registered; the global one solves all at once.
        (line) => {
          const registered = /Registering image #\d+ \(num_reg_frames=(\d+)\)/.exec(line);
          if (registered) step(Number(registered[1]) / images.length);
        },
      ),
    );
    const models: { dir: string; model: SparseModel }[] = [];
    for (const entry of await readdir(mapped, { withFileTypes: true })) {
      if (entry.isDirectory())
        models.push({ dir: join(mapped, entry.name), model: await readSparseModel(join(mapped, entry.name)) });
    }
    return { best: largestModel(models), count: models.length };
  };

  interface Attempt {
    best: { dir: string; model: SparseModel } | undefined;
    metrics: SfmMetrics;
  }
  const ladder: LadderRung[] = [];
  const attempt = async (rung: LadderRung['rung'], plan: MatchPlan, which: Mapper, note: string): Promise<Attempt> => {
    const started = performance.now();
    await match(plan);
    const { best, count } = await map(which, String(ladder.length));
    const metrics: SfmMetrics = {
      ...modelMetrics(best?.model, images.length),
      models_found: count,
      camera_model: params.camera_model,
      matcher: plan.matcher,
      loop_detection: plan.vocabTree !== null,
      vocab_tree: plan.vocabTree,
      mapper: which,
      images_added: images.length - initialCount,
      partial: false,
      ladder,
    };
    const problem = qualityProblem(metrics, params);
    ladder.push({
      rung,
      matcher: plan.matcher,
      loop_detection: plan.vocabTree !== null,
      mapper: which,
      images: images.length,
      registered: metrics.images_registered,
      points: metrics.points,
      seconds: Math.round(performance.now() - started) / 1000,
      outcome: problem ? 'below_gate' : 'passed',
      note,
    });
    return { best, metrics };
  };
  const better = (a: Attempt, b: Attempt) =>
    b.metrics.registered_share > a.metrics.registered_share ||
    (b.metrics.registered_share === a.metrics.registered_share && b.metrics.points > a.metrics.points)
      ? b
      : a;
  const passes = (a: Attempt) => qualityProblem(a.metrics, params) === undefined;

  const initialCount = images.length;
  await extract(images, false);
  let chosen = await attempt('planned', planned, mapper, 'the planned matcher and mapper');

  // (b) denser frames around the unregistered spans (video), then matching that sees more pairs.
  if (!passes(chosen)) {
    quiet = true;
    const registered = new Set(chosen.best?.model.images.map((i) => i.name) ?? []);
    const added = input.densify ? await input.densify(images.filter((name) => !registered.has(name))) : [];
    if (added.length > 0) {
      images = await listImages(imagesDir);
      await extract(added, true);
    }
    const rescue = rescueMatching(params, planned, images.length, input.vocabTree);
    if (added.length > 0 || rescue.matcher !== planned.matcher || rescue.vocabTree !== planned.vocabTree) {
      const what = [
        added.length > 0
          ? `${added.length} denser frames around ${images.length - added.length - registered.size} unregistered`
          : undefined,
        `${rescue.matcher} matching${rescue.vocabTree ? ' with loop detection' : ''}`,
      ].filter(Boolean);
      chosen = better(chosen, await attempt('denser', rescue, mapper, what.join(', ')));
    } else {
      ladder.push(
        skipped(
          'denser',
          params.input_kind === 'video'
            ? 'no denser frames between the unregistered ones, and no other matching to try'
            : 'a photo set has no frames in between, and no other matching to try',
        ),
      );
    }
  }
  // (c) the other mapper, where both exist.
  if (!passes(chosen)) {
    const other = otherMapper(mapper, params.mapper);
    const plan =
      ladder.at(-1)?.outcome === 'skipped' ? planned : rescueMatching(params, planned, images.length, input.vocabTree);
    if (other) chosen = better(chosen, await attempt('other_mapper', plan, other, `${other} instead of ${mapper}`));
    else ladder.push(skipped('other_mapper', `the request fixed the mapper to ${params.mapper}`));
  }
  quiet = false;

  const { best } = chosen;
  const metrics: SfmMetrics = { ...chosen.metrics, ladder };
  const problem = qualityProblem(metrics, params);
  if (problem) {
    if (!best || !usablePartial(metrics, params))
      throw new SfmQualityError(`${problem}. ${ladderAdvice(ladder, params)}`);
    metrics.partial = true;
  }

  const sparse = join(outDir, 'sparse', '0');
  await rm(join(outDir, 'sparse'), { recursive: true, force: true });
  await cp(best!.dir, sparse, { recursive: true });

  const undistorted = join(outDir, 'undistorted');
  await rm(undistorted, { recursive: true, force: true });
  await timed('undistortion_s', 0.85, 1, (step) =>
    runEngine(
      python,
      'undistort',
      {
        ...common,
        images: imagesDir,
        model: sparse,
        output: undistorted,
        max_image_size: params.undistort_max_image_size,
      },
      (line) => {
        const c = counter(line);
        if (c && line.includes('Undistorting image')) step(c.done / c.total);
      },
    ),
  );
  // Multi-view stereo scaffolding the undistorter always writes; training does not use it.
  for (const extra of ['stereo', 'run-colmap-geometric.sh', 'run-colmap-photometric.sh']) {
    await rm(join(undistorted, extra), { recursive: true, force: true });
  }

  return {
    metrics,
    tools,
    timings,
    outputs: { sparse: 'sparse/0', undistortedImages: 'undistorted/images', undistortedSparse: 'undistorted/sparse' },
  };
}
