/**
 * The `.splat` format of antimatter15's web viewer, which many viewers still read: 32 bytes per
 * splat, position (3 × f32), linear scale (3 × f32), RGBA (4 × u8, alpha = opacity) and rotation
 * (4 × u8, w x y z mapped from [-1, 1]); sorted largest and most opaque first so that a viewer
 * streaming the file shows the important splats early.
 */
import { column, sigmoid, shToColor, type GaussianCloud } from './gaussian-ply.js';

export const SPLAT_BYTES = 32;

export function encodeSplat(cloud: GaussianCloud): Buffer {
  const [x, y, z] = [column(cloud, 'x'), column(cloud, 'y'), column(cloud, 'z')];
  const scales = [column(cloud, 'scale_0'), column(cloud, 'scale_1'), column(cloud, 'scale_2')] as const;
  const dc = [column(cloud, 'f_dc_0'), column(cloud, 'f_dc_1'), column(cloud, 'f_dc_2')] as const;
  const opacity = column(cloud, 'opacity');
  const rot = [column(cloud, 'rot_0'), column(cloud, 'rot_1'), column(cloud, 'rot_2'), column(cloud, 'rot_3')] as const;

  const importance = (i: number) => Math.exp(scales[0][i]! + scales[1][i]! + scales[2][i]!) * sigmoid(opacity[i]!);
  const order = Array.from({ length: cloud.count }, (_, i) => i).sort((a, b) => importance(b) - importance(a));

  const out = Buffer.alloc(cloud.count * SPLAT_BYTES);
  order.forEach((i, k) => {
    const at = k * SPLAT_BYTES;
    out.writeFloatLE(x[i]!, at);
    out.writeFloatLE(y[i]!, at + 4);
    out.writeFloatLE(z[i]!, at + 8);
    for (let a = 0; a < 3; a++) out.writeFloatLE(Math.exp(scales[a]![i]!), at + 12 + 4 * a);
    for (let c = 0; c < 3; c++) out[at + 24 + c] = Math.round(shToColor(dc[c]![i]!) * 255);
    out[at + 27] = Math.round(sigmoid(opacity[i]!) * 255);
    const q = rot.map((r) => r[i]!);
    const norm = Math.hypot(...q) || 1;
    for (let c = 0; c < 4; c++) out[at + 28 + c] = Math.min(255, Math.max(0, Math.round((q[c]! / norm) * 128 + 128)));
  });
  return out;
}
