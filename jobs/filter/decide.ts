/**
 * Which frames to keep, from their scores alone (pure). Thresholds are relative to the clip's
 * own medians, so a dim or soft clip is judged against itself, not against an absolute ideal;
 * the minimum count wins over every rule.
 */
import type { ImageScores } from '../image/scores.js';
import { hammingDistance } from '../image/scores.js';

export interface FilterRules {
  /** A frame is blurred below this fraction of the median sharpness. */
  sharpness_ratio: number;
  /** Under-exposed below this fraction of the median brightness. */
  dark_ratio: number;
  /** Over-exposed above median + this fraction of the headroom to white. */
  bright_ratio: number;
  /** Clipped shadows/highlights above max(this, 2 × the clip's median) drop a frame. */
  clipped_max: number;
  /** A frame this close (dHash bits) to the previous kept one is a near-duplicate. */
  duplicate_max_distance: number;
  min_frames: number;
}

export type DropReason = 'blurred' | 'underexposed' | 'overexposed' | 'duplicate';

export interface Decision {
  kept: boolean;
  reasons: DropReason[];
  /** Kept only to reach the minimum frame count despite its reasons. */
  reinstated: boolean;
  /** Hamming distance to the previous kept frame; -1 for the first. */
  distance_to_previous: number;
}

export interface Thresholds {
  sharpness_min: number;
  brightness_min: number;
  brightness_max: number;
  shadows_max: number;
  highlights_max: number;
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  if (sorted.length === 0) return 0;
  return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

export function thresholds(scores: readonly ImageScores[], rules: FilterRules): Thresholds {
  const brightness = median(scores.map((s) => s.brightness));
  return {
    sharpness_min: rules.sharpness_ratio * median(scores.map((s) => s.sharpness)),
    brightness_min: rules.dark_ratio * brightness,
    brightness_max: brightness + rules.bright_ratio * (255 - brightness),
    shadows_max: Math.max(rules.clipped_max, 2 * median(scores.map((s) => s.shadows))),
    highlights_max: Math.max(rules.clipped_max, 2 * median(scores.map((s) => s.highlights))),
  };
}

export function decide(
  scores: readonly ImageScores[],
  rules: FilterRules,
): { limits: Thresholds; decisions: Decision[] } {
  const limits = thresholds(scores, rules);
  let previous: ImageScores | undefined;
  const decisions = scores.map((s): Decision => {
    const reasons: DropReason[] = [];
    if (s.sharpness < limits.sharpness_min) reasons.push('blurred');
    if (s.brightness < limits.brightness_min || s.shadows > limits.shadows_max) reasons.push('underexposed');
    if (s.brightness > limits.brightness_max || s.highlights > limits.highlights_max) reasons.push('overexposed');
    const distance = previous ? hammingDistance(previous.dhash, s.dhash) : -1;
    // Only a frame good on its own can be a duplicate; and only such a frame becomes "previous".
    if (reasons.length === 0 && distance >= 0 && distance <= rules.duplicate_max_distance) reasons.push('duplicate');
    if (reasons.length === 0) previous = s;
    return { kept: reasons.length === 0, reasons, reinstated: false, distance_to_previous: distance };
  });
  // Below the minimum: bring back the sharpest dropped frames until it is reached.
  const missing = rules.min_frames - decisions.filter((d) => d.kept).length;
  if (missing > 0) {
    const dropped = decisions
      .map((decision, index) => ({ decision, sharpness: scores[index]?.sharpness ?? 0 }))
      .filter(({ decision }) => !decision.kept)
      .sort((a, b) => b.sharpness - a.sharpness)
      .slice(0, missing);
    for (const { decision } of dropped) {
      decision.kept = true;
      decision.reinstated = true;
    }
  }
  return { limits, decisions };
}

/** A verdict's quality reasons: what a nearby replacement frame could cure (duplicates cannot). */
export const QUALITY_REASONS: readonly DropReason[] = ['blurred', 'underexposed', 'overexposed'];

/**
 * For a video, no drop may leave the kept frames further apart than `step` of camera travel
 * (frames stage's estimate): blurred or badly exposed frames stay (the stage replaces them by a
 * better nearby frame where it can), and a near-duplicate goes only where the kept frames either
 * side of it are within `step` of each other. Answers the frames brought back for coverage.
 */
export function keepCoverage(decisions: Decision[], travel: readonly number[], step: number): number[] {
  const restored: number[] = [];
  let previous: number | undefined;
  for (const [i, decision] of decisions.entries()) {
    if (!decision.kept) {
      const quality = decision.reasons.some((r) => QUALITY_REASONS.includes(r));
      let next = i + 1;
      while (next < decisions.length && !decisions[next]!.kept) next++;
      const before = previous === undefined ? travel[i]! : travel[previous]!;
      const after = next < decisions.length ? travel[next]! : travel[i]!;
      if (quality || after - before > step) {
        decision.kept = true;
        restored.push(i);
      }
    }
    if (decision.kept) previous = i;
  }
  return restored;
}

/**
 * For a photo set, what each drop costs in coverage: the dHash distance between the kept photos
 * either side of it, which become neighbours (-1 at either end of the set): a large figure says
 * the drop leaves a jump between views.
 */
export function coverageCost(decisions: readonly Decision[], hashes: readonly string[]): number[] {
  return decisions.map((decision, i) => {
    if (decision.kept) return 0;
    let before = i - 1;
    while (before >= 0 && !decisions[before]!.kept) before--;
    let after = i + 1;
    while (after < decisions.length && !decisions[after]!.kept) after++;
    if (before < 0 || after >= decisions.length) return -1;
    return hammingDistance(hashes[before]!, hashes[after]!);
  });
}
