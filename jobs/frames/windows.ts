/**
 * Which frames of a video to keep (pure): chosen along the camera's travel, not the clock, so
 * consecutive chosen frames stay within one step of view change of each other (the overlap the
 * matcher needs), and within each step the sharpest candidate wins. A slow stretch gives few
 * frames, a fast turn many; a static stretch one.
 */
export interface ScoredFrame {
  index: number;
  time_s: number;
  sharpness: number;
  /** Mean grey level, 0..255, and the share of crushed-black pixels (image/scores.ts). */
  brightness: number;
  shadows: number;
  /** Grey-level standard deviation of the downscaled view (motion.ts): its detail. */
  contrast: number;
  /** How far the view has moved since the first frame, in frame widths (motion.ts). */
  travel: number;
}

export interface Choice {
  frame: ScoredFrame;
  /** Frames it was the sharpest of (its step's candidates). */
  candidates: number;
  /** Estimated view change since the previous chosen frame, in frame widths (0 for the first). */
  step: number;
}

/** A step's candidates start half a step past the previous choice, so each choice moves on. */
const LEAD = 0.5;

function sharpest(frames: readonly ScoredFrame[], from: number, to: number): number {
  let best = from;
  for (let j = from + 1; j < to; j++) if (frames[j]!.sharpness > frames[best]!.sharpness) best = j;
  return best;
}

/** Greedy along the travel with steps of at most `step`. */
export function chooseAlongTravel(frames: readonly ScoredFrame[], step: number): Choice[] {
  if (frames.length === 0) return [];
  const travel = (j: number) => frames[j]!.travel;
  let end = 0;
  while (end < frames.length && travel(end) - travel(0) <= LEAD * step) end++;
  let p = sharpest(frames, 0, Math.max(1, end));
  const choices: Choice[] = [{ frame: frames[p]!, candidates: Math.max(1, end), step: 0 }];
  for (;;) {
    let from = p + 1;
    while (from < frames.length && travel(from) - travel(p) < LEAD * step) from++;
    if (from >= frames.length) break;
    let to = from;
    while (to < frames.length && travel(to) - travel(p) <= step) to++;
    // No frame within a step (a jump or a cut): the candidates are the views just past it.
    if (to === from) while (to < frames.length && travel(to) - travel(from) <= LEAD * step) to++;
    const next = sharpest(frames, from, to);
    choices.push({ frame: frames[next]!, candidates: to - from, step: travel(next) - travel(p) });
    p = next;
  }
  // The end of the clip, if the view moved on since the last choice.
  if (p < frames.length - 1 && travel(frames.length - 1) - travel(p) > step / 4) {
    const last = sharpest(frames, p + 1, frames.length);
    choices.push({ frame: frames[last]!, candidates: frames.length - 1 - p, step: travel(last) - travel(p) });
  }
  return choices;
}

/**
 * About `target` frames spread evenly along the travel, but never further apart than `maxStep`:
 * a clip whose travel needs more frames gets them. Where no step reaches `target` (a short or
 * barely moving clip), the step that gives the most frames wins: never fewer than the clip holds
 * toward the target. Answers the step used and the choices.
 */
export function chooseFrames(
  frames: readonly ScoredFrame[],
  options: { target: number; maxStep: number },
): { step: number; choices: Choice[] } {
  const atMax = chooseAlongTravel(frames, options.maxStep);
  if (atMax.length >= options.target) return { step: options.maxStep, choices: atMax };
  // Fewer frames than wanted at the largest step: a smaller step gives more (bisection on it).
  let low = 0;
  let high = options.maxStep;
  let reached: { step: number; choices: Choice[] } | undefined;
  let most = { step: options.maxStep, choices: atMax };
  for (let i = 0; i < 24 && high - low > 1e-4; i++) {
    const step = (low + high) / 2;
    const choices = chooseAlongTravel(frames, step);
    if (choices.length >= options.target) {
      low = step;
      reached = { step, choices };
    } else {
      high = step;
      if (choices.length > most.choices.length) most = { step, choices };
    }
  }
  return reached ?? most;
}
