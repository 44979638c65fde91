/**
 * What the export stage embeds in `viewer/index.html` for the page (viewer/main.ts) to show without
 * fetching anything but the big files: the report, the training cameras and the held-out comparisons.
 * The splat and the mesh are read by URL: `#PATH=URL` fragment parameters (PATH relative to the
 * request folder, e.g. `export/scene.spz`) name signed URLs in the cloud; without one the page reads
 * PATH relative to the request folder it was served from (`../../PATH`).
 */
import { RESULT_FILES } from '../../lib/results.js';
import type { CameraEntry } from './cameras-json.js';
import type { Report } from './report.js';

/** The request-relative paths the viewer reads by URL: one list for the page and for whoever links it. */
export const VIEWER_FILES = {
  page: RESULT_FILES.viewer.path,
  scene: RESULT_FILES.splat_spz.path,
  mesh: RESULT_FILES.mesh_glb.path,
};

export interface ViewerData {
  report: Report;
  cameras: CameraEntry[];
  /** The camera the page starts from (the thumbnail's), by `img_name`. */
  start: string | null;
  /** Held-out views: ground truth beside render, as a small JPEG data URL, with the view's scores. */
  heldout: { camera: string; psnr: number; ssim: number; image: string }[];
  /** Whether the request has a mesh at VIEWER_FILES.mesh (a request stopped before mesh has none). */
  mesh: boolean;
}
