/**
 * Clips that cannot reconstruct, known from the frame scores alone (pure), so they fail in the
 * frames stage with what to do instead of in sfm or after training. Each message says why and
 * what the user can change.
 */
import { median } from '../filter/decide.js';
import type { ScoredFrame } from './windows.js';

export interface ClipRules {
  /** Shorter clips are refused: a second of video rarely moves the camera enough. */
  min_duration_s: number;
  /** The least camera travel over the clip, frame widths (motion.ts): below it, a static shot. */
  min_travel: number;
  /** Refused when more than this share of frames is too dark to show anything. */
  max_dark_share: number;
  /**
   * The least median detail: grey-level standard deviation of the view shrunk to ~96 px, where
   * sensor noise averages out; below it a blank, featureless view.
   */
  min_detail: number;
}

/** A frame this dark (mean grey level of 255), or this much crushed black, shows too little to match. */
const DARK_LEVEL = 20;
const DARK_SHADOWS = 0.6;

export function clipProblem(frames: readonly ScoredFrame[], rules: ClipRules): string | undefined {
  const first = frames[0]?.time_s ?? 0;
  const last = frames.at(-1)?.time_s ?? 0;
  const duration = last - first + (frames.length > 1 ? (last - first) / (frames.length - 1) : 0);
  if (duration < rules.min_duration_s) {
    return `the clip lasts ${duration.toFixed(1)} s; at least ${rules.min_duration_s} s are needed: film a slow walk around the subject, 10 to 60 s long`;
  }
  const dark = frames.filter((f) => f.brightness < DARK_LEVEL || f.shadows > DARK_SHADOWS).length / frames.length;
  if (dark > rules.max_dark_share) {
    return `${Math.round(dark * 100)}% of the clip is too dark to see (at most ${Math.round(rules.max_dark_share * 100)}% allowed): film with more light, or uncover the lens`;
  }
  const detail = median(frames.map((f) => f.contrast));
  if (detail < rules.min_detail) {
    return `the clip shows almost no detail (median contrast ${detail.toFixed(1)} grey levels, at least ${rules.min_detail} needed): a blank wall, fog or an out-of-focus lens gives nothing to match; film a subject with texture, in focus`;
  }
  const travel = frames.at(-1)?.travel ?? 0;
  if (travel < rules.min_travel) {
    return `the camera barely moves (it travels about ${travel.toFixed(2)} frame widths, at least ${rules.min_travel} needed): 3D needs views from different places; walk slowly around the subject instead of standing still`;
  }
  return undefined;
}
