/**
 * The export stage over local folders: from the trained 3DGS `.ply` (and the reconstruction's
 * cameras when given) it writes, in `outDir`:
 *   scene.spz            compressed splat for the web (via @playcanvas/splat-transform)
 *   scene.splat          the older 32-bytes-per-splat web format
 *   cameras.json         the reconstruction's cameras, 3DGS layout
 *   thumbnail.png, thumbnail_small.png   previews
 *   report.json          every stage's timings, metrics and tools (report.ts)
 */
import { stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { exec } from '../runtime/exec.js';
import { readSparseModel, type SparseModel } from '../sfm/colmap-model.js';
import { camerasJson } from './cameras-json.js';
import { column, readGaussianPly } from './gaussian-ply.js';
import { buildReport } from './report.js';
import type { ExportMetrics, ExportParams } from './schema.js';
import { encodeSplat } from './splat-file.js';
import { renderPreview, writePreview } from './thumbnail.js';
import { framingView, representativeImage, viewFromModel } from './view.js';

export class ExportInputError extends Error {
  override name = 'ExportInputError';
}

export interface ExportInput {
  requestId: string;
  /** The train stage's 3DGS `.ply`. */
  plyPath: string;
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

export async function runExport(input: ExportInput): Promise<ExportResult> {
  const { outDir, params } = input;
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
  report(0.15);

  const out = (name: string) => join(outDir, name);
  await timed('splat_s', () => writeFile(out('scene.splat'), encodeSplat(cloud)));
  report(0.3);

  const version = await exec(process.execPath, [SPLAT_TRANSFORM_CLI, '--version']);
  const versionText = version.stdout.toString('utf8') + version.stderr;
  const tools = { 'splat-transform': /v(\d[\w.-]*)/.exec(versionText)?.[1] ?? 'unknown' };
  await timed('spz_s', () =>
    exec(process.execPath, [
      SPLAT_TRANSFORM_CLI,
      ...['--quiet', '--overwrite', input.plyPath, '--spz-version', String(params.spz_version), out('scene.spz')],
    ]),
  );
  report(0.6);

  let model: SparseModel | undefined;
  if (input.sparseDir) {
    model = await readSparseModel(input.sparseDir);
    await writeFile(out('cameras.json'), JSON.stringify(camerasJson(model), null, 1));
  }

  const image = model && representativeImage(model);
  const view =
    model && image
      ? viewFromModel(model, image, params.thumbnail_size)
      : framingView({ x: column(cloud, 'x'), y: column(cloud, 'y'), z: column(cloud, 'z') }, params.thumbnail_size);
  await timed('thumbnail_s', async () => {
    await writePreview(renderPreview(cloud, view), view, out('thumbnail.png'));
    await sharp(out('thumbnail.png'))
      .resize(Math.max(16, Math.round(view.width / 4)))
      .png()
      .toFile(out('thumbnail_small.png'));
  });
  report(0.9);

  const size = async (name: string) => (await stat(out(name))).size;
  const files = ['scene.spz', 'scene.splat', 'thumbnail.png', 'thumbnail_small.png'];
  if (model) files.push('cameras.json');
  const outputs = Object.fromEntries(await Promise.all(files.map(async (f) => [f, { bytes: await size(f) }] as const)));
  const metrics: ExportMetrics = {
    splats: cloud.count,
    ply_bytes: (await stat(input.plyPath)).size,
    spz_bytes: outputs['scene.spz']!.bytes,
    splat_bytes: outputs['scene.splat']!.bytes,
    cameras: model?.images.length ?? 0,
    thumbnail_width: view.width,
    thumbnail_height: view.height,
    thumbnail_from_camera: image !== undefined,
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
  const document = buildReport({
    requestId: input.requestId,
    manifests: { ...input.manifests, export: own },
    outputs,
    now: finished,
  });
  await writeFile(out('report.json'), JSON.stringify(document, null, 2));
  report(1);
  return { metrics, tools, timings };
}
