/**
 * Pinhole views of a scene in COLMAP's convention (world-to-camera rotation and translation,
 * camera looking along +z, image y down): taken from the reconstruction's cameras, or framed
 * around the splats when there are none.
 */
import type { Camera, Image, SparseModel } from '../sfm/colmap-model.js';

export type Vec3 = [number, number, number];
export type Mat3 = [Vec3, Vec3, Vec3];

export interface View {
  width: number;
  height: number;
  fx: number;
  fy: number;
  cx: number;
  cy: number;
  /** World to camera: x_cam = R x_world + t. */
  R: Mat3;
  t: Vec3;
}

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

/** A reconstruction camera's view, scaled so its longer side is `size` pixels. */
export function viewFromModel(model: SparseModel, image: Image, size: number): View {
  const camera = model.cameras.find((c) => c.id === image.cameraId);
  if (!camera) throw new Error(`image ${image.name} refers to a missing camera ${image.cameraId}`);
  const k = intrinsics(camera);
  const s = size / Math.max(camera.width, camera.height);
  return {
    width: Math.round(camera.width * s),
    height: Math.round(camera.height * s),
    fx: k.fx * s,
    fy: k.fy * s,
    cx: k.cx * s,
    cy: k.cy * s,
    R: quaternionToMatrix(image.qvec),
    t: image.tvec,
  };
}

/** The middle image of the capture (by name, so frame order): a representative viewpoint. */
export function representativeImage(model: SparseModel): Image | undefined {
  const images = [...model.images].sort((a, b) => a.name.localeCompare(b.name));
  return images[Math.floor(images.length / 2)];
}

/** Looking along +z at the splats' centroid from far enough back to frame most of them. */
export function framingView(points: { x: Float32Array; y: Float32Array; z: Float32Array }, size: number): View {
  const n = points.x.length;
  const centre: Vec3 = [0, 0, 0];
  for (let i = 0; i < n; i++) {
    centre[0] += points.x[i]! / n;
    centre[1] += points.y[i]! / n;
    centre[2] += points.z[i]! / n;
  }
  const distances = Array.from({ length: n }, (_, i) =>
    Math.hypot(points.x[i]! - centre[0], points.y[i]! - centre[1], points.z[i]! - centre[2]),
  ).sort((a, b) => a - b);
  const radius = distances[Math.floor(0.9 * (n - 1))] || 1;
  const f = size; // 53° field of view
  const back = (radius * f) / (size / 2) + radius;
  return {
    width: size,
    height: size,
    fx: f,
    fy: f,
    cx: size / 2,
    cy: size / 2,
    R: [
      [1, 0, 0],
      [0, 1, 0],
      [0, 0, 1],
    ],
    t: [-centre[0], -centre[1], -centre[2] + back],
  };
}
