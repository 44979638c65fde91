/**
 * `cameras.json` in the layout the reference 3DGS code writes and web viewers read: per registered
 * image its name, size, camera centre, camera-to-world rotation and focal lengths.
 */
import type { SparseModel } from '../sfm/colmap-model.js';
import { cameraCenter, intrinsics, quaternionToMatrix, transpose, type Mat3, type Vec3 } from './view.js';

export interface CameraEntry {
  id: number;
  img_name: string;
  width: number;
  height: number;
  position: Vec3;
  rotation: Mat3;
  fx: number;
  fy: number;
}

export function camerasJson(model: SparseModel): CameraEntry[] {
  return [...model.images]
    .sort((a, b) => a.name.localeCompare(b.name))
    .flatMap((image, id) => {
      const camera = model.cameras.find((c) => c.id === image.cameraId);
      if (!camera) return [];
      const { fx, fy } = intrinsics(camera);
      return [
        {
          id,
          img_name: image.name.replace(/\.[^.]+$/, ''),
          width: camera.width,
          height: camera.height,
          position: cameraCenter(image),
          rotation: transpose(quaternionToMatrix(image.qvec)),
          fx,
          fy,
        },
      ];
    });
}
