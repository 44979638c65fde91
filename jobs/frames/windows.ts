/**
 * Coverage and sharpness together: the clip's time span is cut into `target` equal windows and
 * each window contributes its sharpest frame, so the choice is even in time without being
 * every k-th frame.
 */
export interface ScoredFrame {
  index: number;
  time_s: number;
  sharpness: number;
}

export function sharpestPerWindow(frames: readonly ScoredFrame[], target: number): ScoredFrame[] {
  if (frames.length <= target) return [...frames];
  const first = frames[0]?.time_s ?? 0;
  const last = frames[frames.length - 1]?.time_s ?? 0;
  const span = last - first;
  const best = new Map<number, ScoredFrame>();
  for (const frame of frames) {
    // Frames on the last instant belong to the last window, not a window of their own.
    const window = span > 0 ? Math.min(target - 1, Math.floor(((frame.time_s - first) / span) * target)) : 0;
    const current = best.get(window);
    if (!current || frame.sharpness > current.sharpness) best.set(window, frame);
  }
  return [...best.values()].sort((a, b) => a.index - b.index);
}
