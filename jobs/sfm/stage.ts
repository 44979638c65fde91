/**
 * sfm: the filter stage's kept frames → a sparse reconstruction and undistorted PINHOLE images
 * under `{prefix}sfm/` (see run-sfm.ts for the layout). Whether the frames came from a video or
 * a photo set is a fact the frames stage recorded, not a parameter.
 */
import { join } from 'node:path';
import type { JSONSchemaType } from 'ajv';
import { loadConfig } from '../../lib/config.js';
import { InputRefused } from '../runtime/errors.js';
import { defineStage } from '../runtime/stage.js';
import type { FramesMetrics } from '../frames/stage.js';
import { extractMore, framesWithin, readVideoFrames, VIDEO_FRAMES_FILE } from '../frames/table.js';
import type { FilterMetrics } from '../filter/stage.js';
import type { StageContext } from '../runtime/stage.js';
import { runSfm, SfmQualityError } from './run-sfm.js';
import { sfmMetricsSchema, sfmParamsSchema, type SfmMetrics, type SfmParams } from './schema.js';

export type SfmStageParams = Omit<SfmParams, 'input_kind'>;

const paramsSchema = {
  ...sfmParamsSchema,
  properties: Object.fromEntries(
    Object.entries(sfmParamsSchema.properties as Record<string, unknown>).filter(([name]) => name !== 'input_kind'),
  ),
} as JSONSchemaType<SfmStageParams>;

/** What the machine provides: the interpreter with pycolmap, and (colmap.Dockerfile) a vocabulary tree for loop detection. */
interface ImageConfig {
  SPLATFLOW_PYTHON?: string;
  SPLATFLOW_VOCAB_TREE_PATH?: string;
}

export const imageConfigSchema: JSONSchemaType<ImageConfig> = {
  type: 'object',
  properties: {
    SPLATFLOW_PYTHON: {
      description:
        "The Python interpreter with pycolmap the sfm stage runs COLMAP in; default: the repository's `.venv/bin/python` (`local/setup` makes it).",
      type: 'string',
      nullable: true,
    },
    SPLATFLOW_VOCAB_TREE_PATH: {
      description:
        "Vocabulary tree for loop detection the image provides (`colmap.Dockerfile` bakes one in); a request's `vocab_tree_path` wins.",
      type: 'string',
      nullable: true,
    },
  },
  required: [],
};

/**
 * The denser rung's frames for a video: in each gap next to an unregistered frame, the sharpest
 * video frame of the gap's middle half (by the frames stage's scores), written beside the kept
 * frames under a name that sorts between the gap's two frames (`frame_00011_m.jpg`), so
 * sequential matching sees them in video order.
 */
async function densifier(ctx: StageContext<SfmStageParams>, imagesDir: string) {
  const filter = (await ctx.readManifest('filter'))?.metrics as FilterMetrics | undefined;
  const kept = (filter?.frames ?? []).filter((f) => f.kept && f.travel !== undefined && f.source !== undefined);
  return async (unregistered: readonly string[]): Promise<string[]> => {
    const { dir } = await ctx.readStage('frames', (path) => path === VIDEO_FRAMES_FILE);
    const table = await readVideoFrames(dir).catch(() => undefined);
    if (!table) return []; // a request from before the frames stage kept its table
    const taken = new Set(kept.map((f) => Number(f.source)));
    const missing = new Set(unregistered);
    const wanted = new Map<string, number>();
    for (const [k, frame] of kept.entries()) {
      if (!missing.has(frame.file)) continue;
      for (const [a, b] of [
        [kept[k - 1], frame],
        [frame, kept[k + 1]],
      ]) {
        if (!a || !b) continue;
        const name = a.file.replace(/\.[^.]+$/, '_m.jpg');
        if (wanted.has(name)) continue;
        const quarter = (b.travel! - a.travel!) / 4;
        let best: number | undefined;
        for (const row of framesWithin(table, a.travel! + quarter, b.travel! - quarter, taken)) {
          if (best === undefined || table.sharpness[row]! > table.sharpness[best]!) best = row;
        }
        if (best !== undefined) {
          wanted.set(name, table.index[best]!);
          taken.add(table.index[best]!);
        }
      }
    }
    if (wanted.size === 0) return [];
    const { path } = await ctx.fetchInput(ctx.contract.inputUri);
    const byIndex = new Map([...wanted].map(([name, index]) => [index, name]));
    await ctx.timed('densify', () =>
      extractMore(path, table, [...byIndex.keys()], (index) => join(imagesDir, byIndex.get(index)!)),
    );
    ctx.log.info('denser frames', { unregistered: unregistered.length, added: wanted.size });
    return [...wanted.keys()].sort();
  };
}

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
      python: config.SPLATFLOW_PYTHON,
      vocabTree: config.SPLATFLOW_VOCAB_TREE_PATH,
      densify: source === 'video' ? await densifier(ctx, dir) : undefined,
      progress: (fraction) => ctx.progress(0.95 * fraction, 'reconstructing'),
    }).catch((error: unknown) => {
      if (error instanceof SfmQualityError) throw new InputRefused(error.message);
      throw error;
    });
    for (const [name, version] of Object.entries(result.tools)) ctx.tool(name, version);
    const { ladder, ...summary } = result.metrics;
    ctx.log.info('reconstructed', {
      input_kind: source,
      ...summary,
      rungs: ladder.map((r) => `${r.rung}: ${r.outcome}`),
    });
    if (result.metrics.partial) {
      ctx.log.warning('continuing below the registration gate with the largest model', {
        registered: result.metrics.images_registered,
        images: result.metrics.images_input,
      });
    }
    return { metrics: result.metrics, timings: result.timings };
  },
});
