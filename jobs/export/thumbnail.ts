/**
 * A preview image of the splats on the CPU: each Gaussian drawn as an isotropic disc (its largest
 * axis, two standard deviations) with a Gaussian falloff, composited back to front. Not a faithful
 * splat rasterizer — anisotropy and view-dependent colour are ignored — but it shows the scene's
 * shape and colours from a real camera in a fraction of a second, with no GPU or browser.
 */
import sharp from 'sharp';
import { column, shToColor, sigmoid, type GaussianCloud } from './gaussian-ply.js';
import type { Vec3, View } from './view.js';

/** Discs larger than this share of the image are clamped: a few huge background splats would dominate the cost. */
const MAX_RADIUS_SHARE = 1 / 12;

export function renderPreview(cloud: GaussianCloud, view: View, background: Vec3 = [0, 0, 0]): Buffer {
  const { width, height, fx, fy, cx, cy, R, t } = view;
  const [x, y, z] = [column(cloud, 'x'), column(cloud, 'y'), column(cloud, 'z')];
  const scales = [column(cloud, 'scale_0'), column(cloud, 'scale_1'), column(cloud, 'scale_2')] as const;
  const dc = [column(cloud, 'f_dc_0'), column(cloud, 'f_dc_1'), column(cloud, 'f_dc_2')] as const;
  const opacity = column(cloud, 'opacity');

  const visible: { i: number; u: number; v: number; depth: number; radius: number }[] = [];
  const maxRadius = Math.max(width, height) * MAX_RADIUS_SHARE;
  for (let i = 0; i < cloud.count; i++) {
    const p = [x[i]!, y[i]!, z[i]!];
    const depth = R[2][0] * p[0]! + R[2][1] * p[1]! + R[2][2] * p[2]! + t[2];
    if (!(depth > 1e-3)) continue;
    const u = (fx * (R[0][0] * p[0]! + R[0][1] * p[1]! + R[0][2] * p[2]! + t[0])) / depth + cx;
    const v = (fy * (R[1][0] * p[0]! + R[1][1] * p[1]! + R[1][2] * p[2]! + t[1])) / depth + cy;
    const sigma = Math.exp(Math.max(scales[0][i]!, scales[1][i]!, scales[2][i]!));
    const radius = Math.min(maxRadius, Math.max(0.75, (2 * fx * sigma) / depth));
    if (u + radius < 0 || v + radius < 0 || u - radius >= width || v - radius >= height) continue;
    visible.push({ i, u, v, depth, radius });
  }
  visible.sort((a, b) => b.depth - a.depth);

  const image = new Float32Array(width * height * 3);
  for (let k = 0; k < width * height; k++) image.set(background, k * 3);
  for (const { i, u, v, radius } of visible) {
    const alpha = sigmoid(opacity[i]!);
    const colour = [shToColor(dc[0][i]!), shToColor(dc[1][i]!), shToColor(dc[2][i]!)];
    const inverse = 2 / (radius * radius); // exp(-0.5 (d/σ)²) with σ = radius / 2
    for (let py = Math.max(0, Math.floor(v - radius)); py <= Math.min(height - 1, Math.ceil(v + radius)); py++) {
      for (let px = Math.max(0, Math.floor(u - radius)); px <= Math.min(width - 1, Math.ceil(u + radius)); px++) {
        const d2 = (px + 0.5 - u) ** 2 + (py + 0.5 - v) ** 2;
        if (d2 > radius * radius) continue;
        const a = alpha * Math.exp(-d2 * inverse);
        const at = (py * width + px) * 3;
        for (let c = 0; c < 3; c++) image[at + c] = image[at + c]! * (1 - a) + colour[c]! * a;
      }
    }
  }
  const bytes = Buffer.alloc(width * height * 3);
  for (let k = 0; k < bytes.length; k++) bytes[k] = Math.round(Math.min(1, Math.max(0, image[k]!)) * 255);
  return bytes;
}

/** Writes the preview as PNG at `path`. */
export async function writePreview(pixels: Buffer, view: Pick<View, 'width' | 'height'>, path: string): Promise<void> {
  await sharp(pixels, { raw: { width: view.width, height: view.height, channels: 3 } })
    .png()
    .toFile(path);
}
