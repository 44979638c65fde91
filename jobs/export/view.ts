/**
 * Camera geometry in COLMAP's convention (world-to-camera rotation and translation, camera looking
 * along +z, image y down), for cameras.json.
 */
import type { Camera, Image } from '../sfm/colmap-model.js';

export type Vec3 = [number, number, number];
export type Mat3 = [Vec3, Vec3, Vec3];

export function quaternionToMatrix([w, x, y, z]: readonly [number, number, number, number]): Mat3 {
  const n = Math.hypot(w, x, y, z) || 1;
  [w, x, y, z] = [w / n, x / n, y / n, z / n];
  return [
    [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
    [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
    [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
  ];
}

export const transpose = (m: Mat3): Mat3 => [
  [m[0][0], m[1][0], m[2][0]],
  [m[0][1], m[1][1], m[2][1]],
  [m[0][2], m[1][2], m[2][2]],
];

export const apply = (m: Mat3, v: Vec3): Vec3 => [
  m[0][0] * v[0] + m[0][1] * v[1] + m[0][2] * v[2],
  m[1][0] * v[0] + m[1][1] * v[1] + m[1][2] * v[2],
  m[2][0] * v[0] + m[2][1] * v[1] + m[2][2] * v[2],
];

/** Where the camera is in the world: -Rᵀt. */
export function cameraCenter(image: Pick<Image, 'qvec' | 'tvec'>): Vec3 {
  const c = apply(transpose(quaternionToMatrix(image.qvec)), image.tvec);
  return [-c[0], -c[1], -c[2]];
}

/** Focal lengths and principal point of any COLMAP model (distortion terms are ignored for a preview). */
export function intrinsics(camera: Camera): { fx: number; fy: number; cx: number; cy: number } {
  const p = camera.params;
  const twoFocal = camera.model === 'PINHOLE' || camera.model === 'OPENCV' || camera.model === 'FULL_OPENCV';
  return twoFocal ? { fx: p[0]!, fy: p[1]!, cx: p[2]!, cy: p[3]! } : { fx: p[0]!, fy: p[0]!, cx: p[1]!, cy: p[2]! };
}
