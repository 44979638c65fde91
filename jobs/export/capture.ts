/**
 * `report.json`'s `capture`: what became of the user's frames, from the frames, filter and sfm
 * manifests (pure): how many the video offered, were chosen, kept, added and registered, what the
 * sfm ladder did, and warnings a user should read (a partial model, frames kept despite blur).
 */
import type { FilterMetrics } from '../filter/stage.js';
import type { FramesMetrics } from '../frames/stage.js';
import type { LadderRung, SfmMetrics } from '../sfm/schema.js';

export interface CaptureSummary {
  source: 'video' | 'images';
  /** Every decoded frame of a video; the photos of a photo set. */
  frames_considered: number;
  frames_chosen: number;
  frames_kept: number;
  frames_replaced: number;
  /** Denser frames the sfm ladder added from the video. */
  frames_added: number;
  frames_registered: number;
  registered_share: number;
  partial: boolean;
  ladder: LadderRung[];
  warnings: string[];
}

const metricsOf = <T>(manifest: unknown): Partial<T> | undefined =>
  (manifest as { metrics?: Partial<T> } | undefined)?.metrics;

export function captureSummary(manifests: Partial<Record<string, unknown>>): CaptureSummary | undefined {
  const frames = metricsOf<FramesMetrics>(manifests['frames']);
  if (!frames?.source || frames.count === undefined) return undefined;
  const filter = metricsOf<FilterMetrics>(manifests['filter']);
  const sfm = metricsOf<SfmMetrics>(manifests['sfm']);
  const warnings: string[] = [];
  const unit = frames.source === 'video' ? 'frames' : 'photos';
  const keptForCoverage = filter?.count_kept_for_coverage ?? 0;
  if (keptForCoverage > 0) {
    warnings.push(
      `${keptForCoverage} blurred, badly exposed or repeated ${unit} were kept because no better frame was near and dropping them would leave a gap`,
    );
  }
  const dropped = (filter?.count_in ?? 0) - (filter?.count_kept ?? 0);
  if (frames.source === 'images' && dropped > 0) warnings.push(`${dropped} photos were dropped by the filter`);
  if (sfm?.partial) {
    warnings.push(
      `only ${sfm.images_registered} of ${sfm.images_input} ${unit} registered, below the gate: the scene was built from the largest connected part; views of the rest are missing`,
    );
  }
  return {
    source: frames.source,
    frames_considered: frames.video?.frames_decoded ?? frames.count,
    frames_chosen: frames.count,
    frames_kept: filter?.count_kept ?? 0,
    frames_replaced: filter?.count_replaced ?? 0,
    frames_added: sfm?.images_added ?? 0,
    frames_registered: sfm?.images_registered ?? 0,
    registered_share: sfm?.registered_share ?? 0,
    partial: sfm?.partial ?? false,
    ladder: sfm?.ladder ?? [],
    warnings,
  };
}
