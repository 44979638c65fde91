/**
 * export: the train stage's 3DGS `.ply` and renders (and the sfm stage's training cameras, when that
 * stage finished) → web formats, thumbnails, the viewer page and `report.json` under
 * `{prefix}export/` (run-export.ts).
 */
import { dirname, join } from 'node:path';
import { Ajv } from 'ajv';
import { InputRefused } from '../runtime/errors.js';
import { STAGES, type StageName } from '../runtime/contract.js';
import { defineStage } from '../runtime/stage.js';
import { joinUri } from '../runtime/storage.js';
import { ExportInputError, runExport } from './run-export.js';
import {
  exportMetricsSchema,
  exportParamsSchema,
  trainRendersSchema,
  type ExportMetrics,
  type ExportParams,
} from './schema.js';

/** The train stage's output this stage reads (jobs/README.md). */
export const TRAINED_PLY = 'point_cloud.ply';
/** The sfm stage's PINHOLE model of the training cameras, without the images. */
const UNDISTORTED_SPARSE = 'undistorted/sparse/';
const validRenders = new Ajv({ allErrors: true }).compile(trainRendersSchema);

export const exportStage = defineStage<ExportParams, ExportMetrics>({
  name: 'export',
  params: exportParamsSchema,
  metrics: exportMetricsSchema,
  async run(ctx) {
    // The ply is fetched by its contract name (jobs/README.md), not looked up in train's output list.
    const train = await ctx.readManifest('train');
    const trainFolder = joinUri(ctx.contract.requestPrefix, 'train');
    if (!train) throw new InputRefused(`stage train has not finished: no ${joinUri(trainFolder, 'manifest.json')}`);
    const renders = train.metrics['renders'];
    if (!validRenders(renders)) {
      const why = validRenders.errors?.[0];
      throw new InputRefused(
        `the train stage's manifest has no valid metrics.renders (${why ? `${why.instancePath || '/'} ${why.message ?? ''}` : 'missing'}): run the train stage again`,
      );
    }
    const ply = await ctx.fetchInput(joinUri(trainFolder, TRAINED_PLY), join('train', TRAINED_PLY));
    for (const { file } of [renders.thumbnail, ...renders.heldout]) {
      await ctx.fetchInput(joinUri(trainFolder, file), join('train', file));
    }
    const earlier = STAGES.filter((stage): stage is StageName => stage !== 'export' && stage !== 'train');
    const manifests: Record<string, unknown> = { train };
    for (const stage of earlier) {
      const manifest = await ctx.readManifest(stage);
      if (manifest) manifests[stage] = manifest;
    }
    const sfm = manifests['sfm']
      ? await ctx.readStage('sfm', (path) => path.startsWith(UNDISTORTED_SPARSE))
      : undefined;
    const result = await runExport({
      requestId: ctx.contract.requestId,
      plyPath: ply.path,
      renders,
      rendersDir: dirname(ply.path),
      sparseDir: sfm && join(sfm.dir, UNDISTORTED_SPARSE),
      manifests,
      outDir: ctx.outDir,
      params: ctx.params,
      progress: (fraction) => ctx.progress(0.95 * fraction, 'exporting'),
    }).catch((error: unknown) => {
      if (error instanceof ExportInputError) throw new InputRefused(error.message);
      throw error;
    });
    for (const [name, version] of Object.entries(result.tools)) ctx.tool(name, version);
    return { metrics: result.metrics, timings: result.timings };
  },
});
