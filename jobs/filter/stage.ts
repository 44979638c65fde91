/**
 * filter: the frames stage's frames → the ones worth reconstructing from; every score and
 * decision goes into the manifest. From a photo set, blurred, badly exposed and near-duplicate
 * photos are dropped, each drop with its coverage cost. From a video nothing opens a gap: a
 * blurred or badly exposed frame is replaced by a better frame of the video near it (or kept,
 * with its score, when none is better), and a near-duplicate goes only where its neighbours
 * cover it (decide.ts's keepCoverage).
 */
import { copyFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { JSONSchemaType } from 'ajv';
import sharp from 'sharp';
import { isImageName } from '../image/names.js';
import { scoreImage, type ImageScores } from '../image/scores.js';
import { InputRefused } from '../runtime/errors.js';
import { defineStage, type StageContext } from '../runtime/stage.js';
import type { FramesMetrics } from '../frames/stage.js';
import { extractMore, framesWithin, readVideoFrames, type VideoFrames } from '../frames/table.js';
import {
  coverageCost,
  decide,
  keepCoverage,
  QUALITY_REASONS,
  type Decision,
  type DropReason,
  type FilterRules,
  type Thresholds,
} from './decide.js';

const paramsSchema: JSONSchemaType<FilterRules> = {
  type: 'object',
  properties: {
    sharpness_ratio: {
      description: 'A frame is blurred below this fraction of the median sharpness (Laplacian variance).',
      type: 'number',
      minimum: 0,
      maximum: 1,
      default: 0.35,
    },
    dark_ratio: {
      description: 'A frame is under-exposed below this fraction of the median brightness.',
      type: 'number',
      minimum: 0,
      maximum: 1,
      default: 0.5,
    },
    bright_ratio: {
      description: 'A frame is over-exposed above the median plus this fraction of the headroom to white.',
      type: 'number',
      minimum: 0,
      maximum: 1,
      default: 0.6,
    },
    clipped_max: {
      description: "Clipped shadows or highlights above max(this, 2 × the clip's median share) drop a frame.",
      type: 'number',
      minimum: 0,
      maximum: 1,
      default: 0.25,
    },
    duplicate_max_distance: {
      description: 'A frame this close (dHash bits) to the previous kept one is a near-duplicate.',
      type: 'integer',
      minimum: 0,
      maximum: 64,
      default: 2,
    },
    min_frames: {
      description:
        'Dropped frames are reinstated to keep at least this many; fewer frames to filter than this is refused.',
      type: 'integer',
      minimum: 1,
      maximum: 5000,
      default: 10,
    },
  },
  required: [],
  additionalProperties: false,
};

export interface FrameVerdict extends ImageScores {
  file: string;
  kept: boolean;
  reasons: DropReason[];
  reinstated: boolean;
  distance_to_previous: number;
  /** Video: kept despite its reasons, because dropping it would leave a gap (or none nearby was better). */
  kept_for_coverage: boolean;
  /** Video: the decode-order index of the frame now in this file (a replacement's, when replaced). */
  source?: string;
  /** Video: the camera's travel at that frame, frame widths. */
  travel?: number;
  /** Video: the sharpness of the frame it replaced, when replaced (its scores are the new frame's). */
  replaced_sharpness?: number;
  /** Photos: the dHash distance between the kept photos either side of a dropped one (-1 at an end). */
  coverage_cost?: number;
}

export interface FilterMetrics {
  source: 'video' | 'images';
  count_in: number;
  count_kept: number;
  count_replaced: number;
  count_kept_for_coverage: number;
  /** Video: the step of camera travel no drop may exceed, and the largest left between kept frames. */
  step?: number;
  max_gap?: number;
  thresholds: Thresholds;
  frames: FrameVerdict[];
}

const number = { type: 'number' } as const;

const metricsSchema: JSONSchemaType<FilterMetrics> = {
  type: 'object',
  properties: {
    source: { type: 'string', enum: ['video', 'images'] },
    count_in: { type: 'integer', minimum: 0 },
    count_kept: { type: 'integer', minimum: 0 },
    count_replaced: { type: 'integer', minimum: 0 },
    count_kept_for_coverage: { type: 'integer', minimum: 0 },
    step: { type: 'number', nullable: true },
    max_gap: { type: 'number', nullable: true },
    thresholds: {
      type: 'object',
      properties: {
        sharpness_min: number,
        brightness_min: number,
        brightness_max: number,
        shadows_max: number,
        highlights_max: number,
      },
      required: ['sharpness_min', 'brightness_min', 'brightness_max', 'shadows_max', 'highlights_max'],
      additionalProperties: false,
    },
    frames: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          file: { type: 'string' },
          sharpness: number,
          brightness: number,
          shadows: number,
          highlights: number,
          dhash: { type: 'string', pattern: '^[0-9a-f]{16}$' },
          kept: { type: 'boolean' },
          reasons: {
            type: 'array',
            items: { type: 'string', enum: ['blurred', 'underexposed', 'overexposed', 'duplicate'] },
          },
          reinstated: { type: 'boolean' },
          distance_to_previous: { type: 'integer', minimum: -1 },
          kept_for_coverage: { type: 'boolean' },
          source: { type: 'string', nullable: true },
          travel: { type: 'number', nullable: true },
          replaced_sharpness: { type: 'number', nullable: true },
          coverage_cost: { type: 'integer', nullable: true },
        },
        required: [
          'file',
          'sharpness',
          'brightness',
          'shadows',
          'highlights',
          'dhash',
          'kept',
          'reasons',
          'reinstated',
          'distance_to_previous',
          'kept_for_coverage',
        ],
        additionalProperties: false,
      },
    },
  },
  required: ['source', 'count_in', 'count_kept', 'count_replaced', 'count_kept_for_coverage', 'thresholds', 'frames'],
  additionalProperties: false,
};

const round = (v: number, digits = 4) => Number(v.toFixed(digits));

function roundAll(limits: Thresholds): Thresholds {
  const rounded = { ...limits };
  for (const key of Object.keys(rounded) as (keyof Thresholds)[]) rounded[key] = round(rounded[key]);
  return rounded;
}

/** A replacement must be this much sharper (frames-stage scores) to be worth decoding. */
const BETTER = 1.25;

interface Replacement {
  file: number;
  index: number;
}

/**
 * For each kept frame with a quality reason, the sharpest video frame whose exposure is within
 * limits, lying between its neighbours no further than `step` of travel from either (so the
 * replacement opens no gap), when it is clearly sharper.
 */
function replacements(
  chosen: readonly { index: number; travel: number; sharpness: number }[],
  decisions: readonly Decision[],
  table: VideoFrames,
  limits: Thresholds,
  step: number,
): Replacement[] {
  const taken = new Set(chosen.map((c) => c.index));
  const found: Replacement[] = [];
  for (const [file, decision] of decisions.entries()) {
    if (!decision.reasons.some((r) => QUALITY_REASONS.includes(r))) continue;
    const own = chosen[file]!;
    const from = (chosen[file + 1]?.travel ?? own.travel + step / 2) - step;
    const to = (chosen[file - 1]?.travel ?? own.travel - step / 2) + step;
    let best: number | undefined;
    for (const row of framesWithin(table, from, to, taken)) {
      const brightness = table.brightness[row]!;
      if (brightness < limits.brightness_min || brightness > limits.brightness_max) continue;
      if (best === undefined || table.sharpness[row]! > table.sharpness[best]!) best = row;
    }
    if (best !== undefined && table.sharpness[best]! > BETTER * own.sharpness) {
      found.push({ file, index: table.index[best]! });
      taken.add(table.index[best]!);
    }
  }
  return found;
}

const qualityCount = (reasons: readonly DropReason[]) => reasons.filter((r) => QUALITY_REASONS.includes(r)).length;

async function scoreAll(ctx: StageContext<FilterRules>, dir: string, files: readonly string[]) {
  const all: ImageScores[] = [];
  for (const [index, file] of files.entries()) {
    all.push(await scoreImage(join(dir, file)));
    ctx.progress((0.7 * (index + 1)) / files.length, 'scoring');
  }
  return all;
}

export const filterStage = defineStage<FilterRules, FilterMetrics>({
  name: 'filter',
  params: paramsSchema,
  metrics: metricsSchema,
  async run(ctx) {
    const { dir, manifest } = await ctx.readStage('frames');
    const framesMetrics = manifest.metrics as unknown as FramesMetrics;
    const files = manifest.outputs
      .map((o) => o.path)
      .filter(isImageName)
      .sort();
    if (files.length < ctx.params.min_frames) {
      throw new InputRefused(`only ${files.length} frames to filter; at least ${ctx.params.min_frames} are needed`);
    }
    ctx.tool('libvips', sharp.versions.vips);
    const scores = await ctx.timed('score', () => scoreAll(ctx, dir, files));
    const { limits, decisions } = decide(scores, ctx.params);
    const video = framesMetrics.source === 'video';
    const paths = files.map((file) => join(dir, file));
    const extra: Partial<FrameVerdict>[] = files.map(() => ({}));
    let step: number | undefined;
    let replaced = 0;
    let restored: number[] = [];
    if (video) {
      const byFile = new Map(framesMetrics.frames.map((f) => [f.file, f]));
      const chosen = files.map((file) => {
        const record = byFile.get(file);
        return { index: Number(record?.source), travel: record?.travel ?? 0, sharpness: record?.sharpness ?? 0 };
      });
      const gaps = chosen.slice(1).map((c, i) => c.travel - chosen[i]!.travel);
      step = framesMetrics.video?.step || Math.max(0, ...gaps);
      const table = await readVideoFrames(dir);
      const wanted = replacements(chosen, decisions, table, limits, step);
      if (wanted.length > 0) {
        const { path: videoPath } = await ctx.fetchInput(ctx.contract.inputUri);
        const folder = join(ctx.scratch, 'replacements');
        await mkdir(folder, { recursive: true });
        const named = (index: number) => join(folder, `${index}.jpg`);
        await ctx.timed('replace', () =>
          extractMore(
            videoPath,
            table,
            wanted.map((w) => w.index),
            named,
          ),
        );
        for (const { file, index } of wanted) {
          const candidate = await scoreImage(named(index));
          const original = scores[file]!;
          const reasons = decide([...scores.slice(0, file), candidate, ...scores.slice(file + 1)], ctx.params)
            .decisions[file]!.reasons;
          const better =
            qualityCount(reasons) < qualityCount(decisions[file]!.reasons) ||
            candidate.sharpness >= BETTER * original.sharpness;
          if (!better) continue;
          scores[file] = candidate;
          decisions[file]!.reasons = reasons.filter((r) => r !== 'duplicate');
          paths[file] = named(index);
          const row = table.index.indexOf(index);
          extra[file] = {
            source: String(index),
            travel: table.travel[row],
            replaced_sharpness: round(original.sharpness, 2),
          };
          chosen[file] = { index, travel: table.travel[row]!, sharpness: table.sharpness[row]! };
          replaced++;
        }
      }
      for (const [file, c] of chosen.entries())
        extra[file] = { source: String(c.index), travel: c.travel, ...extra[file] };
      for (const decision of decisions) decision.kept = decision.reasons.length === 0 || decision.reinstated;
      restored = keepCoverage(
        decisions,
        chosen.map((c) => c.travel),
        step,
      );
    } else {
      const costs = coverageCost(
        decisions,
        scores.map((s) => s.dhash),
      );
      for (const [i, cost] of costs.entries()) if (!decisions[i]!.kept) extra[i] = { coverage_cost: cost };
    }
    const restoredSet = new Set(restored);
    const frames: FrameVerdict[] = files.map((file, i) => {
      const s = scores[i] as ImageScores;
      return {
        file,
        sharpness: round(s.sharpness, 2),
        brightness: round(s.brightness, 2),
        shadows: round(s.shadows),
        highlights: round(s.highlights),
        dhash: s.dhash,
        ...(decisions[i] as Decision),
        kept_for_coverage: restoredSet.has(i),
        ...extra[i],
      };
    });
    for (const [i, frame] of frames.entries()) if (frame.kept) await copyFile(paths[i]!, join(ctx.outDir, frame.file));
    const kept = frames.filter((f) => f.kept);
    const travels = kept.map((f) => f.travel ?? 0);
    const maxGap = video ? Math.max(0, ...travels.slice(1).map((t, i) => t - travels[i]!)) : undefined;
    ctx.log.info('frames filtered', { count_in: files.length, count_kept: kept.length, replaced });
    return {
      metrics: {
        source: video ? 'video' : 'images',
        count_in: files.length,
        count_kept: kept.length,
        count_replaced: replaced,
        count_kept_for_coverage: restored.length,
        ...(step !== undefined ? { step: round(step), max_gap: round(maxGap ?? 0) } : {}),
        thresholds: roundAll(limits),
        frames,
      },
    };
  },
});
