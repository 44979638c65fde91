/**
 * The export stage over local folders: from the trained 3DGS `.ply`, the train stage's renders (and
 * the reconstruction's cameras when given) it writes, in `outDir`:
 *   scene.spz            compressed splat for the web (via @playcanvas/splat-transform)
 *   scene.sog            PlayCanvas's SOG, the smallest of the three (via splat-transform)
 *   scene.splat          the older 32-bytes-per-splat web format
 *   cameras.json         the reconstruction's cameras, 3DGS layout
 *   thumbnail.png, thumbnail_small.png   the trainer's render through a training camera, resized
 *   viewer/index.html    a self-contained viewer page (viewer-page.ts)
 *   report.json          every stage's timings, metrics and tools, the files and their sizes (report.ts)
 */
import { mkdir, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { exec } from '../runtime/exec.js';
import { readSparseModel, type SparseModel } from '../sfm/colmap-model.js';
import { camerasJson, type CameraEntry } from './cameras-json.js';
import { readGaussianPly } from './gaussian-ply.js';
import { buildReport, type Report } from './report.js';
import type { ExportMetrics, ExportParams, TrainRenders } from './schema.js';
import { encodeSplat } from './splat-file.js';
import { VIEWER_FILES, type ViewerData } from './viewer-data.js';
import { viewerPage } from './viewer-page.js';

export class ExportInputError extends Error {
  override name = 'ExportInputError';
}

export interface ExportInput {
  requestId: string;
  /** The train stage's 3DGS `.ply`. */
  plyPath: string;
  /** The train stage's `metrics.renders`, and the local folder holding those files at the paths they name. */
  renders: TrainRenders;
  rendersDir: string;
  /** A COLMAP model of the training cameras (the sfm stage's `undistorted/sparse`), when available. */
  sparseDir?: string;
  /** Every finished stage's parsed `manifest.json`, by stage name. */
  manifests: Partial<Record<string, unknown>>;
  outDir: string;
  params: ExportParams;
  progress?: (fraction: number) => void;
}

export interface ExportResult {
  metrics: ExportMetrics;
  tools: Record<string, string>;
  timings: Record<string, number>;
}

const SPLAT_TRANSFORM_CLI = join(
  dirname(fileURLToPath(import.meta.resolve('@playcanvas/splat-transform'))),
  '..',
  'bin',
  'cli.mjs',
);

/** What each user-facing file is, by its path under the request folder (the report's `files`). */
const FORMATS: Record<string, string> = {
  'train/point_cloud.ply': '3DGS PLY (float32, every SH band)',
  'export/scene.spz': 'SPZ (Niantic, gzip; read by Spark and most web viewers)',
  'export/scene.sog': 'SOG (PlayCanvas: WebP-compressed attributes in a zip)',
  'export/scene.splat': '.splat (antimatter15: 32 bytes a splat, no view-dependent colour)',
  'export/cameras.json': 'training cameras (3DGS cameras.json layout)',
  'export/thumbnail.png': 'PNG render through a training camera',
  'export/thumbnail_small.png': 'PNG render, a quarter of the thumbnail',
  'mesh/mesh.ply': 'mesh PLY (vertex colours)',
  'mesh/mesh.glb': 'mesh glTF 2.0 binary',
};

/** `{path: size}` of a stage manifest's `outputs` (jobs/runtime/manifest.ts), tolerating an older shape. */
function outputSizes(manifest: unknown): Map<string, number> {
  const outputs = (manifest as { outputs?: unknown } | undefined)?.outputs;
  const sizes = new Map<string, number>();
  if (!Array.isArray(outputs)) return sizes;
  for (const o of outputs as { path?: unknown; size?: unknown }[]) {
    if (typeof o.path === 'string' && typeof o.size === 'number') sizes.set(o.path, o.size);
  }
  return sizes;
}

/** The held-out comparisons as small JPEGs to embed in the viewer page (the PNGs stay in the train folder). */
async function embeddedComparisons(renders: TrainRenders, dir: string): Promise<ViewerData['heldout']> {
  return Promise.all(
    renders.heldout.map(async ({ file, camera, psnr, ssim }) => {
      const jpeg = await sharp(join(dir, file))
        .resize({ width: 960, withoutEnlargement: true })
        .jpeg({ quality: 82 })
        .toBuffer();
      return { camera, psnr, ssim, image: `data:image/jpeg;base64,${jpeg.toString('base64')}` };
    }),
  );
}

export async function runExport(input: ExportInput): Promise<ExportResult> {
  const { outDir, params, renders } = input;
  const report = input.progress ?? (() => {});
  const started = new Date();
  const timings: Record<string, number> = {};
  const timed = async <T>(phase: string, work: () => Promise<T>): Promise<T> => {
    const at = performance.now();
    const result = await work();
    timings[phase] = Math.round(performance.now() - at) / 1000;
    return result;
  };

  report(0);
  const cloud = await timed('read_s', () => readGaussianPly(input.plyPath)).catch((error: Error) => {
    throw new ExportInputError(`cannot read the trained splat ${input.plyPath}: ${error.message}`);
  });
  if (cloud.count === 0) throw new ExportInputError('the trained splat is empty (0 Gaussians)');
  report(0.1);

  const out = (name: string) => join(outDir, name);
  await timed('splat_s', () => writeFile(out('scene.splat'), encodeSplat(cloud)));
  report(0.2);

  const version = await exec(process.execPath, [SPLAT_TRANSFORM_CLI, '--version']);
  const versionText = version.stdout.toString('utf8') + version.stderr;
  const tools = { 'splat-transform': /v(\d[\w.-]*)/.exec(versionText)?.[1] ?? 'unknown' };
  const splatTransform = (...args: string[]) =>
    exec(process.execPath, [SPLAT_TRANSFORM_CLI, '--quiet', '--overwrite', input.plyPath, ...args]);
  await timed('spz_s', () => splatTransform('--spz-version', String(params.spz_version), out('scene.spz')));
  report(0.35);
  // SOG's k-means runs on WebGPU where there is one; these machines have none, so on the CPU.
  await timed('sog_s', () => splatTransform('--gpu', 'cpu', out('scene.sog')));
  report(0.7);

  let model: SparseModel | undefined;
  let cameras: CameraEntry[] = [];
  if (input.sparseDir) {
    model = await readSparseModel(input.sparseDir);
    cameras = camerasJson(model);
    await writeFile(out('cameras.json'), JSON.stringify(cameras, null, 1));
  }

  const thumbnail = await timed('thumbnail_s', async () => {
    const source = join(input.rendersDir, renders.thumbnail.file);
    const info = await sharp(source)
      .resize(params.thumbnail_size, params.thumbnail_size, { fit: 'inside', withoutEnlargement: true })
      .png()
      .toFile(out('thumbnail.png'));
    await sharp(source)
      .resize(Math.max(16, Math.round(info.width / 4)))
      .png()
      .toFile(out('thumbnail_small.png'));
    return info;
  });
  report(0.8);

  const exported = ['scene.spz', 'scene.sog', 'scene.splat', 'thumbnail.png', 'thumbnail_small.png'];
  if (model) exported.push('cameras.json');
  const outputs = Object.fromEntries(
    await Promise.all(exported.map(async (f) => [f, { bytes: (await stat(out(f))).size }] as const)),
  );
  const plyBytes = (await stat(input.plyPath)).size;
  const sizes = new Map<string, number>([
    ['train/point_cloud.ply', plyBytes],
    ...Object.entries(outputs).map(([f, { bytes }]) => [`export/${f}`, bytes] as const),
    ...[...outputSizes(input.manifests['mesh'])].map(([path, bytes]) => [`mesh/${path}`, bytes] as const),
  ]);
  const files: Report['files'] = {};
  for (const [path, format] of Object.entries(FORMATS)) {
    const bytes = sizes.get(path);
    if (bytes !== undefined) files[path] = { bytes, format };
  }
  const metrics: ExportMetrics = {
    splats: cloud.count,
    ply_bytes: plyBytes,
    spz_bytes: outputs['scene.spz']!.bytes,
    sog_bytes: outputs['scene.sog']!.bytes,
    splat_bytes: outputs['scene.splat']!.bytes,
    cameras: model?.images.length ?? 0,
    thumbnail_width: thumbnail.width,
    thumbnail_height: thumbnail.height,
    thumbnail_camera: renders.thumbnail.camera,
    heldout_views: renders.heldout.length,
  };
  // This stage's manifest is written after report.json, so its own entry is made here.
  const finished = new Date();
  const own = {
    stage: 'export',
    started_at: started.toISOString(),
    finished_at: finished.toISOString(),
    duration_s: (finished.getTime() - started.getTime()) / 1000,
    timings,
    metrics,
    tools,
  };
  const mesh = files[VIEWER_FILES.mesh] !== undefined;
  const document = buildReport({
    requestId: input.requestId,
    manifests: { ...input.manifests, export: own },
    outputs,
    files,
    renders: {
      thumbnail: { ...renders.thumbnail, file: `train/${renders.thumbnail.file}` },
      heldout: renders.heldout.map((entry) => ({ ...entry, file: `train/${entry.file}` })),
    },
    viewer: { page: VIEWER_FILES.page, scene: VIEWER_FILES.scene, mesh: mesh ? VIEWER_FILES.mesh : null },
    now: finished,
  });
  await writeFile(out('report.json'), JSON.stringify(document, null, 2));
  report(0.9);

  const start = renders.thumbnail.camera.replace(/\.[^.]+$/, '');
  const page = viewerPage({
    report: document,
    cameras,
    start: cameras.some((c) => c.img_name === start) ? start : null,
    heldout: await embeddedComparisons(renders, input.rendersDir),
    mesh,
  });
  await mkdir(out('viewer'), { recursive: true });
  await writeFile(out('viewer/index.html'), await page);
  report(1);
  return { metrics, tools, timings };
}
