/**
 * The sfm stage over local folders: COLMAP features and matching, GLOMAP or COLMAP mapping, the
 * quality gate, then undistortion to PINHOLE images for training. Below the gate it climbs a
 * ladder before refusing (plan.ts's nextRungs): denser frames of the video around the spans that
 * did not register, matched again (exhaustively where the count allows, with loop detection
 * where a tree exists); then the other mapper where both are installed. Every rung goes into
 * the metrics' `ladder`; the best model found wins. The runtime downloads the
 * filter stage's frames into `imagesDir` and uploads `outDir` as `{request}/sfm/`:
 *   sparse/0/                the reconstruction in the frames' original (distorted) camera model
 *   undistorted/images/      PINHOLE images the train stage reads
 *   undistorted/sparse/      the matching PINHOLE model
 */
import { existsSync } from 'node:fs';
import { cp, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
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
import { exec, ExecError, findExecutable } from '../runtime/exec.js';
import { InputRefused } from '../runtime/errors.js';
import type { LadderRung, SfmMetrics, SfmParams } from './schema.js';

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
  /** Tool binaries, overridable for a CUDA image that installs them elsewhere. */
  colmap?: string;
  glomap?: string;
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

/** `[12/40]` in COLMAP's progress lines ("Processed file [12/40]", "Matching image [3/40]"). */
function counter(line: string): { done: number; total: number } | undefined {
  const match = /\[(\d+)\/(\d+)/.exec(line);
  return match ? { done: Number(match[1]), total: Number(match[2]) } : undefined;
}

/** COLMAP prints progress counters on stdout and glog messages on stderr: `onLine` sees both. */
function runColmap(colmap: string, args: readonly string[], onLine: (line: string) => void) {
  return exec(colmap, args, { onStdoutLine: onLine, onStderrLine: onLine });
}

export async function runSfm(input: SfmInput): Promise<SfmResult> {
  const { imagesDir, outDir, scratchDir, params } = input;
  const report = input.progress ?? (() => {});
  const colmap = input.colmap ?? 'colmap';
  const glomap = input.glomap ?? findExecutable('glomap');
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
  if (planned.vocabTree !== null && !existsSync(planned.vocabTree)) {
    const source = params.vocab_tree_path ? 'vocab_tree_path' : 'SPLATFLOW_VOCAB_TREE_PATH';
    throw new InputRefused(`the vocabulary tree ${planned.vocabTree} (${source}) does not exist`);
  }
  const mapper = planMapper(params, glomap !== undefined);
  if (mapper === 'glomap' && !glomap)
    throw new InputRefused('mapper "glomap" was requested but glomap is not installed');
  const database = join(scratchDir, 'database.db');
  const imageList = join(scratchDir, 'images.txt');
  const mappedRoot = join(scratchDir, 'sparse');
  // A rerun starts clean: stale matches or models from an earlier attempt must not leak into this one.
  await rm(mappedRoot, { recursive: true, force: true });
  await mkdir(mappedRoot, { recursive: true });
  await rm(database, { force: true });
  const threads = String(params.num_threads);
  // Debian's CPU build aborts without a display unless SIFT runs on the CPU (docs/machine-notes.md); the CUDA image matches on the GPU.
  const gpu = (input.gpu ?? existsSync('/dev/nvidiactl')) ? '1' : '0';

  const help = await exec(colmap, ['help']);
  const versionText = help.stdout.toString('utf8') + help.stderr;
  const tools: Record<string, string> = { colmap: /COLMAP\s+(\S+)/.exec(versionText)?.[1] ?? 'unknown' };

  /**
   * Features for `list` only: a rung that adds frames extracts just the new ones into the same
   * database. A video's added frames join its one camera (the fresh database's camera 1): a second
   * extraction would otherwise give them a camera of their own, and the mapper two lenses to solve.
   */
  const extract = async (list: readonly string[], added: boolean) => {
    await writeFile(imageList, list.join('\n') + '\n');
    await timed('features_s', 0, 0.3, (step) =>
      runColmap(
        colmap,
        [
          'feature_extractor',
          ...['--database_path', database, '--image_path', imagesDir, '--image_list_path', imageList],
          ...['--ImageReader.camera_model', params.camera_model],
          ...['--ImageReader.single_camera', singleCamera(params) ? '1' : '0'],
          ...(added && singleCamera(params) ? ['--ImageReader.existing_camera_id', '1'] : []),
          ...['--SiftExtraction.use_gpu', gpu],
          ...['--SiftExtraction.max_image_size', String(params.max_image_size)],
          ...['--SiftExtraction.num_threads', threads],
        ],
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
      runColmap(
        colmap,
        [
          `${plan.matcher}_matcher`,
          ...['--database_path', database],
          ...['--SiftMatching.use_gpu', gpu],
          ...['--SiftMatching.num_threads', threads],
          ...(plan.matcher === 'sequential'
            ? [
                ...['--SequentialMatching.overlap', String(params.sequential_overlap)],
                ...(plan.vocabTree !== null
                  ? ['--SequentialMatching.loop_detection', '1', '--SequentialMatching.vocab_tree_path', plan.vocabTree]
                  : []),
              ]
            : []),
        ],
        (line) => {
          if (line.includes('Indexing image')) loopPass = true;
          const c = counter(line);
          if (c && !loopPass && /Matching (block|image)/.test(line)) step(c.done / c.total);
        },
      ),
    );
  };

  /** Maps into a fresh folder and answers its largest model (undefined: none). */
  const map = async (which: 'glomap' | 'colmap', name: string) => {
    const mapped = join(mappedRoot, name);
    await mkdir(mapped, { recursive: true });
    if (which === 'glomap') tools['glomap'] = process.env['GLOMAP_VERSION'] ?? 'unknown';
    await timed('mapping_s', 0.55, 0.85, async (step) => {
      const args = ['--database_path', database, '--image_path', imagesDir, '--output_path', mapped];
      try {
        if (which === 'glomap') await exec(glomap!, ['mapper', ...args]);
        else
          await runColmap(
            colmap,
            [
              'mapper',
              ...args,
              ...['--Mapper.num_threads', threads],
              ...['--Mapper.abs_pose_min_num_inliers', String(params.abs_pose_min_num_inliers)],
              ...['--Mapper.abs_pose_min_inlier_ratio', String(params.abs_pose_min_inlier_ratio)],
              ...['--Mapper.tri_min_angle', String(params.tri_min_angle)],
              ...['--Mapper.filter_min_tri_angle', String(params.tri_min_angle)],
              ...['--Mapper.ba_global_max_num_iterations', String(params.ba_global_max_num_iterations)],
            ],
            (line) => {
              const registered = /^Registering image #\d+ \((\d+)\)/.exec(line);
              if (registered) step(Number(registered[1]) / images.length);
            },
          );
      } catch (error) {
        // No model at all is a quality verdict for the gate below, not a tool failure.
        if (!(error instanceof ExecError && /failed to create sparse model/i.test(error.stderr))) throw error;
      }
    });
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
  const attempt = async (
    rung: LadderRung['rung'],
    plan: MatchPlan,
    which: 'glomap' | 'colmap',
    note: string,
  ): Promise<Attempt> => {
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
    const other = otherMapper(mapper, glomap !== undefined, params.mapper);
    const plan =
      ladder.at(-1)?.outcome === 'skipped' ? planned : rescueMatching(params, planned, images.length, input.vocabTree);
    if (other) chosen = better(chosen, await attempt('other_mapper', plan, other, `${other} instead of ${mapper}`));
    else
      ladder.push(
        skipped(
          'other_mapper',
          glomap === undefined ? 'glomap is not installed' : `the request fixed the mapper to ${params.mapper}`,
        ),
      );
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
    runColmap(
      colmap,
      [
        'image_undistorter',
        ...['--image_path', imagesDir, '--input_path', sparse, '--output_path', undistorted],
        ...['--output_type', 'COLMAP', '--max_image_size', String(params.undistort_max_image_size)],
      ],
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
