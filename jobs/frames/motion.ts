/**
 * A cheap estimate of how far the view has moved along a video, from tiny greyscale thumbnails:
 * each frame is aligned with a reference frame by the whole-frame shift that best matches them
 * (mean absolute difference over the overlap, searched on a half-size copy, then refined), and
 * the reference moves on once the view has shifted by a tenth of its width. Measuring against a
 * reference rather than the frame before keeps sub-pixel steps from vanishing at 30 fps. What a
 * shift cannot explain (walking forward, turning, a cut to other content) leaves a residual that
 * also counts as motion, so a cut reads as a whole frame of it. Figures are fractions of the width.
 */
import type { GreyImage } from '../image/sharpness.js';

/** Thumbnails this wide (pixels): a 1-pixel shift is about 1% of the view. */
export const THUMB_WIDTH = 96;
/** The search range each way on the half-size copy: 8 of 48 px is a sixth of the view. */
const SEARCH = 8;
/** The view having moved this far from the reference, the current frame becomes the reference. */
const REANCHOR = 0.1;
/**
 * Mean absolute grey difference (0..255, means removed) after the best shift: below `NOISE` the
 * shift explains the change; each grey level above it adds 1/`FULL` of a view. On room.mp4 a
 * view 5% away leaves 2-4 after the shift, the same frame re-encoded 0-2.
 */
const NOISE = 8;
const FULL = 40;
/** A shift must lower the residual by this much (grey levels) to count as motion. */
const STILL_MARGIN = 0.5;

export interface Thumbnail {
  data: Float32Array;
  width: number;
  height: number;
  /** Standard deviation of its grey levels: the view's detail at this scale (sensor noise averages out). */
  contrast: number;
}

/** Box-averages by an integer factor, rows and columns that do not fill a box left out. */
function shrink(data: ArrayLike<number>, width: number, height: number, factor: number): Thumbnail {
  const w = Math.max(1, Math.floor(width / factor));
  const h = Math.max(1, Math.floor(height / factor));
  const out = new Float32Array(w * h);
  for (let y = 0; y < h * factor; y++) {
    const row = y * width;
    const outRow = Math.floor(y / factor) * w;
    for (let x = 0; x < w * factor; x++) out[outRow + Math.floor(x / factor)]! += data[row + x] as number;
  }
  const area = factor * factor;
  let sum = 0;
  for (let i = 0; i < out.length; i++) sum += out[i]! /= area;
  // Mean removed, so exposure drift does not read as motion.
  const mean = sum / out.length;
  let squares = 0;
  for (let i = 0; i < out.length; i++) squares += (out[i]! -= mean) ** 2;
  return { data: out, width: w, height: h, contrast: Math.sqrt(squares / out.length) };
}

export interface Pyramid {
  full: Thumbnail;
  half: Thumbnail;
}

export function thumbnail({ data, width, height }: GreyImage): Pyramid {
  const full = shrink(data, width, height, Math.max(1, Math.floor(width / THUMB_WIDTH)));
  return { full, half: shrink(full.data, full.width, full.height, 2) };
}

/** Mean absolute difference between `a` and `b` shifted by (dx, dy), over their overlap. */
function difference(a: Thumbnail, b: Thumbnail, dx: number, dy: number): number {
  let sum = 0;
  const { width, height } = a;
  const x0 = Math.max(0, -dx);
  const x1 = Math.min(width, width - dx);
  const y0 = Math.max(0, -dy);
  const y1 = Math.min(height, height - dy);
  for (let y = y0; y < y1; y++) {
    const rowA = y * width;
    const rowB = (y + dy) * width + dx;
    for (let x = x0; x < x1; x++) sum += Math.abs((a.data[rowA + x] as number) - (b.data[rowB + x] as number));
  }
  const count = (x1 - x0) * (y1 - y0);
  return count > 0 ? sum / count : Infinity;
}

export interface Displacement {
  /** The best aligning shift, in full-thumbnail pixels. */
  dx: number;
  dy: number;
  /** Mean absolute grey difference left after that shift. */
  residual: number;
  /** Shift length plus the unexplained residual, as a fraction of the width, at most 1. */
  motion: number;
}

export function displacement(a: Pyramid, b: Pyramid): Displacement {
  const range = Math.min(SEARCH, Math.floor(a.half.width / 3), Math.floor(a.half.height / 3));
  let coarse = { dx: 0, dy: 0, residual: Infinity };
  for (let dy = -range; dy <= range; dy++) {
    for (let dx = -range; dx <= range; dx++) {
      const residual = difference(a.half, b.half, dx, dy);
      if (residual < coarse.residual) coarse = { dx, dy, residual };
    }
  }
  // Standing still unless a shift clearly explains more: on a flat view every shift fits as badly.
  const still = difference(a.full, b.full, 0, 0);
  let best = { dx: 0, dy: 0, residual: still - STILL_MARGIN };
  for (let dy = 2 * coarse.dy - 1; dy <= 2 * coarse.dy + 1; dy++) {
    for (let dx = 2 * coarse.dx - 1; dx <= 2 * coarse.dx + 1; dx++) {
      const residual = difference(a.full, b.full, dx, dy);
      if (residual < best.residual) best = { dx, dy, residual };
    }
  }
  if (best.dx === 0 && best.dy === 0) best.residual = still;
  const shift = Math.hypot(best.dx, best.dy) / a.full.width;
  return { ...best, motion: Math.min(1, shift + Math.max(0, best.residual - NOISE) / FULL) };
}

/**
 * Follows a video frame by frame; `push` answers the view's travel since the first frame, never
 * decreasing (a camera swinging back and forth is judged by how far it got, conservatively).
 */
export class MotionTracker {
  private reference: Pyramid | undefined;
  private base = 0;
  private travel = 0;

  push(frame: Pyramid): number {
    if (!this.reference) {
      this.reference = frame;
      return 0;
    }
    const { motion } = displacement(this.reference, frame);
    this.travel = Math.max(this.travel, this.base + motion);
    if (motion >= REANCHOR) {
      this.reference = frame;
      this.base += motion;
    }
    return this.travel;
  }
}
