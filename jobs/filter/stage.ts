/**
 * filter: the frames stage's frames → the ones worth reconstructing from. Blurred, badly exposed
 * and near-duplicate frames are dropped; every score and decision goes into the manifest.
 */
import { copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { JSONSchemaType } from 'ajv';
import sharp from 'sharp';
import { isImageName } from '../image/names.js';
import { scoreImage, type ImageScores } from '../image/scores.js';
import { InputRefused } from '../runtime/errors.js';
import { defineStage } from '../runtime/stage.js';
import { decide, type DropReason, type FilterRules, type Thresholds } from './decide.js';

const paramsSchema: JSONSchemaType<FilterRules> = {
  type: 'object',
  properties: {
    sharpness_ratio: { type: 'number', minimum: 0, maximum: 1, default: 0.35 },
    dark_ratio: { type: 'number', minimum: 0, maximum: 1, default: 0.5 },
    bright_ratio: { type: 'number', minimum: 0, maximum: 1, default: 0.6 },
    clipped_max: { type: 'number', minimum: 0, maximum: 1, default: 0.25 },
    duplicate_max_distance: { type: 'integer', minimum: 0, maximum: 64, default: 2 },
    min_frames: { type: 'integer', minimum: 1, maximum: 5000, default: 10 },
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
}

export interface FilterMetrics {
  count_in: number;
  count_kept: number;
  thresholds: Thresholds;
  frames: FrameVerdict[];
}

const number = { type: 'number' } as const;

const metricsSchema: JSONSchemaType<FilterMetrics> = {
  type: 'object',
  properties: {
    count_in: { type: 'integer', minimum: 0 },
    count_kept: { type: 'integer', minimum: 0 },
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
        ],
        additionalProperties: false,
      },
    },
  },
  required: ['count_in', 'count_kept', 'thresholds', 'frames'],
  additionalProperties: false,
};

const round = (v: number, digits = 4) => Number(v.toFixed(digits));

function roundAll(limits: Thresholds): Thresholds {
  const rounded = { ...limits };
  for (const key of Object.keys(rounded) as (keyof Thresholds)[]) rounded[key] = round(rounded[key]);
  return rounded;
}

export const filterStage = defineStage<FilterRules, FilterMetrics>({
  name: 'filter',
  params: paramsSchema,
  metrics: metricsSchema,
  async run(ctx) {
    const { dir, manifest } = await ctx.readStage('frames');
    const files = manifest.outputs
      .map((o) => o.path)
      .filter(isImageName)
      .sort();
    if (files.length < ctx.params.min_frames) {
      throw new InputRefused(`only ${files.length} frames to filter; at least ${ctx.params.min_frames} are needed`);
    }
    ctx.tool('libvips', sharp.versions.vips);
    const scores = await ctx.timed('score', async () => {
      const all: ImageScores[] = [];
      for (const [index, file] of files.entries()) {
        all.push(await scoreImage(join(dir, file)));
        ctx.progress((0.8 * (index + 1)) / files.length, 'scoring');
      }
      return all;
    });
    const { limits, decisions } = decide(scores, ctx.params);
    const frames: FrameVerdict[] = files.map((file, i) => {
      const s = scores[i] as ImageScores;
      return {
        file,
        sharpness: round(s.sharpness, 2),
        brightness: round(s.brightness, 2),
        shadows: round(s.shadows),
        highlights: round(s.highlights),
        dhash: s.dhash,
        ...(decisions[i] as (typeof decisions)[number]),
      };
    });
    for (const frame of frames) if (frame.kept) await copyFile(join(dir, frame.file), join(ctx.outDir, frame.file));
    const kept = frames.filter((f) => f.kept).length;
    ctx.log.info('frames filtered', { count_in: files.length, count_kept: kept });
    return {
      metrics: {
        count_in: files.length,
        count_kept: kept,
        thresholds: roundAll(limits),
        frames,
      },
    };
  },
});
