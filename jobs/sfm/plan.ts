/** Pure decisions of the sfm stage: how to match, which mapper, which camera layout, and the quality gate. */
import type { SparseModel } from './colmap-model.js';
import type { LadderRung, Mapper, SfmMetrics, SfmParams } from './schema.js';

export interface MatchPlan {
  matcher: 'sequential' | 'exhaustive';
  /** The vocabulary tree sequential matching detects loops with; null: no loop detection. */
  vocabTree: string | null;
}

/**
 * Exhaustive matching finds every overlap, loop closures included, but is quadratic in the image
 * count; sequential matching is linear but only sees a frame's next neighbours. Without a
 * vocabulary tree sequential matching cannot close loops: on 16 frames of the watch orbit it lost
 * the closing pairs and no model survived, where exhaustive matching registered 12-14. So `auto`
 * matches exhaustively up to `exhaustive_max_images` and sequentially above, video or not, with
 * loop detection whenever a tree is known: the request's `vocab_tree_path`, else `imageTree`, the
 * one the container ships (`SPLATFLOW_VOCAB_TREE_PATH`; Debian's COLMAP ships none).
 */
export function planMatching(params: SfmParams, imageCount: number, imageTree?: string): MatchPlan {
  const matcher =
    params.matcher !== 'auto'
      ? params.matcher
      : imageCount <= params.exhaustive_max_images
        ? 'exhaustive'
        : 'sequential';
  const tree = params.vocab_tree_path || imageTree || null;
  return { matcher, vocabTree: matcher === 'sequential' ? tree : null };
}

/**
 * The denser rung's matching: exhaustive up to twice the planned limit (a rescue may cost more
 * than a plan), else sequential with loop detection where a tree is known. A matcher the request
 * fixed stays fixed.
 */
export function rescueMatching(
  params: SfmParams,
  planned: MatchPlan,
  imageCount: number,
  imageTree?: string,
): MatchPlan {
  if (params.matcher !== 'auto') return planned;
  if (imageCount <= 2 * params.exhaustive_max_images) return { matcher: 'exhaustive', vocabTree: null };
  return { matcher: 'sequential', vocabTree: params.vocab_tree_path || imageTree || null };
}

/** The mapper the last rung tries: the other one, where the request allowed either. */
export function otherMapper(used: Mapper, requested: SfmParams['mapper'] = 'auto'): Mapper | undefined {
  if (requested !== 'auto') return undefined;
  return used === 'global' ? 'incremental' : 'global';
}

/** A model below the share gate that is still worth training on (the partial_min_share policy). */
export function usablePartial(
  metrics: Pick<SfmMetrics, 'registered_share' | 'points'>,
  params: Pick<SfmParams, 'partial_min_share' | 'min_points' | 'min_registered_share'>,
): boolean {
  return (
    params.partial_min_share < params.min_registered_share &&
    metrics.registered_share >= params.partial_min_share &&
    metrics.points >= params.min_points
  );
}

/** What the refusal adds: the rungs tried, and what the user can change. */
export function ladderAdvice(ladder: readonly LadderRung[], params: Pick<SfmParams, 'input_kind'>): string {
  const tried = ladder
    .map((r) =>
      r.outcome === 'skipped'
        ? `${r.rung}: skipped (${r.note})`
        : `${r.rung}: ${r.note}, ${r.registered} of ${r.images} registered`,
    )
    .join('; ');
  const change =
    params.input_kind === 'video'
      ? 'film again more slowly, with more light and a textured subject always in view, or send more frames (a higher target_frames or a smaller max_step)'
      : 'add photos between the views that did not register';
  return `Tried: ${tried}. To change: ${change}`;
}

/** `auto` maps globally first: see docs/capture.md's mapper table. */
export function planMapper(params: Pick<SfmParams, 'mapper'>): Mapper {
  return params.mapper === 'auto' ? 'global' : params.mapper;
}

/** A video is one lens at one zoom: sharing intrinsics across frames makes them far better constrained. */
export function singleCamera(params: SfmParams): boolean {
  if (params.shared_camera === 'auto') return params.input_kind === 'video';
  return params.shared_camera === 'single';
}

/** The mapper may split a scene into several models; the one with the most registered images wins. */
export function largestModel<T extends { model: SparseModel }>(models: readonly T[]): T | undefined {
  return models.reduce<T | undefined>(
    (best, candidate) => (!best || candidate.model.images.length > best.model.images.length ? candidate : best),
    undefined,
  );
}

export function modelMetrics(
  model: SparseModel | undefined,
  imagesInput: number,
): Pick<
  SfmMetrics,
  | 'images_input'
  | 'images_registered'
  | 'registered_share'
  | 'points'
  | 'mean_reprojection_error_px'
  | 'mean_track_length'
  | 'cameras'
> {
  const images = model?.images.length ?? 0;
  const points = model?.points ?? [];
  let observations = 0;
  let weightedError = 0;
  for (const point of points) {
    observations += point.trackLength;
    weightedError += point.error * point.trackLength;
  }
  return {
    images_input: imagesInput,
    images_registered: images,
    registered_share: imagesInput > 0 ? images / imagesInput : 0,
    points: points.length,
    mean_reprojection_error_px: observations > 0 ? weightedError / observations : 0,
    mean_track_length: points.length > 0 ? observations / points.length : 0,
    cameras: model?.cameras.length ?? 0,
  };
}

/** Why the reconstruction is not good enough to train on, in words a user can act on; undefined when it is. */
export function qualityProblem(
  metrics: Pick<SfmMetrics, 'images_input' | 'images_registered' | 'registered_share' | 'points'>,
  params: Pick<SfmParams, 'min_registered_share' | 'min_points' | 'input_kind'>,
): string | undefined {
  const unit = params.input_kind === 'video' ? 'frames' : 'images';
  if (metrics.registered_share < params.min_registered_share) {
    const needed = Math.ceil(params.min_registered_share * 100);
    const advice =
      params.input_kind === 'video'
        ? 'the clip may be too fast, too dark or lack overlap: move slowly, keep the subject in view and light it well'
        : 'the photos may not overlap enough or show different scenes: take them from nearby viewpoints of one subject, each sharing most of its view with the next';
    return `only ${metrics.images_registered} of ${metrics.images_input} ${unit} registered (at least ${needed}% needed): ${advice}`;
  }
  if (metrics.points < params.min_points) {
    return `only ${metrics.points} 3D points were reconstructed (at least ${params.min_points} needed): the scene may lack texture; include detailed surfaces and avoid plain walls, glass and reflections`;
  }
  return undefined;
}
