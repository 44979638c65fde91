/**
 * sfm: the filter stage's kept frames → a sparse reconstruction and undistorted PINHOLE images
 * under `{prefix}sfm/` (see run-sfm.ts for the layout). Whether the frames came from a video or
 * a photo set is a fact the frames stage recorded, not a parameter.
 */
import type { JSONSchemaType } from 'ajv';
import { loadConfig } from '../../lib/config.js';
import { InputRefused } from '../runtime/errors.js';
import { defineStage } from '../runtime/stage.js';
import type { FramesMetrics } from '../frames/stage.js';
import { runSfm, SfmQualityError } from './run-sfm.js';
import { sfmMetricsSchema, sfmParamsSchema, type SfmMetrics, type SfmParams } from './schema.js';

export type SfmStageParams = Omit<SfmParams, 'input_kind'>;

const paramsSchema = {
  ...sfmParamsSchema,
  properties: Object.fromEntries(
    Object.entries(sfmParamsSchema.properties as Record<string, unknown>).filter(([name]) => name !== 'input_kind'),
  ),
} as JSONSchemaType<SfmStageParams>;

/** What the container provides: colmap.Dockerfile bakes in a vocabulary tree for loop detection. */
interface ImageConfig {
  SPLATFLOW_VOCAB_TREE_PATH?: string;
}

const imageConfigSchema: JSONSchemaType<ImageConfig> = {
  type: 'object',
  properties: { SPLATFLOW_VOCAB_TREE_PATH: { type: 'string', nullable: true } },
  required: [],
};

export const sfmStage = defineStage<SfmStageParams, SfmMetrics>({
  name: 'sfm',
  params: paramsSchema,
  metrics: sfmMetricsSchema,
  async run(ctx) {
    const frames = await ctx.readManifest('frames');
    const source = (frames?.metrics as Partial<FramesMetrics> | undefined)?.source;
    if (!source) throw new InputRefused('stage frames has not finished: its manifest records no source');
    const config = loadConfig(imageConfigSchema, ctx.env);
    const { dir } = await ctx.readStage('filter');
    const result = await runSfm({
      imagesDir: dir,
      outDir: ctx.outDir,
      scratchDir: ctx.scratch,
      params: { ...ctx.params, input_kind: source },
      vocabTree: config.SPLATFLOW_VOCAB_TREE_PATH,
      progress: (fraction) => ctx.progress(0.95 * fraction, 'reconstructing'),
    }).catch((error: unknown) => {
      if (error instanceof SfmQualityError) throw new InputRefused(error.message);
      throw error;
    });
    for (const [name, version] of Object.entries(result.tools)) ctx.tool(name, version);
    ctx.log.info('reconstructed', { input_kind: source, ...result.metrics });
    return { metrics: result.metrics, timings: result.timings };
  },
});
