/**
 * Depth-Anything-V2's own pre- and post-processing, as pure functions: the input size rule of
 * its `Resize(keep_aspect_ratio, ensure_multiple_of=14, resize_method='lower_bound')`, ImageNet
 * normalisation into NCHW, and the bilinear resize (half-pixel centres, as
 * `F.interpolate(align_corners=False)`) that brings the prediction back to the frame's size.
 */

export const IMAGENET_MEAN = [0.485, 0.456, 0.406] as const;
export const IMAGENET_STD = [0.229, 0.224, 0.225] as const;

/** Round to a multiple, but never below `min` (the lower bound keeps the short side ≥ target). */
function toMultiple(value: number, multiple: number, min: number): number {
  let result = Math.round(value / multiple) * multiple;
  if (result < min) result = Math.ceil(value / multiple) * multiple;
  return result;
}

/** The size the model sees: short side scaled to `target`, both sides multiples of `multiple`. */
export function modelInputSize(
  width: number,
  height: number,
  target = 518,
  multiple = 14,
): { width: number; height: number } {
  const scale = Math.max(target / width, target / height);
  return {
    width: toMultiple(width * scale, multiple, target),
    height: toMultiple(height * scale, multiple, target),
  };
}

/** Interleaved 8-bit RGB → planar, normalised floats written at `offset` of `out`. */
export function normaliseRgb(rgb: Uint8Array, pixels: number, out: Float32Array, offset: number): void {
  for (let c = 0; c < 3; c++) {
    const mean = IMAGENET_MEAN[c] as number;
    const std = IMAGENET_STD[c] as number;
    const plane = offset + c * pixels;
    for (let i = 0; i < pixels; i++) out[plane + i] = ((rgb[i * 3 + c] as number) / 255 - mean) / std;
  }
}

export function resizeBilinear(src: Float32Array, sw: number, sh: number, dw: number, dh: number): Float32Array {
  const out = new Float32Array(dw * dh);
  const sx = sw / dw;
  const sy = sh / dh;
  for (let y = 0; y < dh; y++) {
    const fy = Math.min(Math.max((y + 0.5) * sy - 0.5, 0), sh - 1);
    const y0 = Math.floor(fy);
    const y1 = Math.min(y0 + 1, sh - 1);
    const wy = fy - y0;
    for (let x = 0; x < dw; x++) {
      const fx = Math.min(Math.max((x + 0.5) * sx - 0.5, 0), sw - 1);
      const x0 = Math.floor(fx);
      const x1 = Math.min(x0 + 1, sw - 1);
      const wx = fx - x0;
      const top = (src[y0 * sw + x0] as number) * (1 - wx) + (src[y0 * sw + x1] as number) * wx;
      const bottom = (src[y1 * sw + x0] as number) * (1 - wx) + (src[y1 * sw + x1] as number) * wx;
      out[y * dw + x] = top * (1 - wy) + bottom * wy;
    }
  }
  return out;
}

/** The full range of a prediction mapped onto 0..65535; min and max are kept to undo it. */
export function quantise(depth: Float32Array): { data: Uint16Array; min: number; max: number } {
  let min = Infinity;
  let max = -Infinity;
  for (const v of depth) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const range = max - min;
  const data = new Uint16Array(depth.length);
  if (range > 0)
    for (let i = 0; i < depth.length; i++) data[i] = Math.round((((depth[i] as number) - min) / range) * 65535);
  return { data, min, max };
}
