/** The export stage's parameters, the metrics it puts in its manifest, and the train stage's renders it reads. */
import type { JSONSchemaType } from 'ajv';

export interface ExportParams {
  thumbnail_size: number;
  spz_version: 3 | 4;
}

export const exportParamsSchema: JSONSchemaType<ExportParams> = {
  type: 'object',
  properties: {
    thumbnail_size: {
      description:
        'Long side of `thumbnail.png` (the train stage renders it at 512); `thumbnail_small.png` is a quarter of it.',
      type: 'integer',
      minimum: 64,
      maximum: 512,
      default: 512,
    },
    spz_version: {
      description: 'SPZ version of `scene.spz`: 3 is what Spark and most web viewers read; 4 is smaller but newer.',
      type: 'integer',
      enum: [3, 4],
      default: 3,
    },
  },
  required: [],
  additionalProperties: false,
};

export interface ExportMetrics {
  splats: number;
  ply_bytes: number;
  spz_bytes: number;
  sog_bytes: number;
  splat_bytes: number;
  cameras: number;
  thumbnail_width: number;
  thumbnail_height: number;
  /** The training camera the thumbnail looks through (the train stage's render). */
  thumbnail_camera: string;
  /** Held-out comparisons the viewer page shows. */
  heldout_views: number;
}

export const exportMetricsSchema: JSONSchemaType<ExportMetrics> = {
  type: 'object',
  properties: {
    splats: { type: 'integer', minimum: 1 },
    ply_bytes: { type: 'integer', minimum: 0 },
    spz_bytes: { type: 'integer', minimum: 0 },
    sog_bytes: { type: 'integer', minimum: 0 },
    splat_bytes: { type: 'integer', minimum: 0 },
    cameras: { type: 'integer', minimum: 0 },
    thumbnail_width: { type: 'integer', minimum: 1 },
    thumbnail_height: { type: 'integer', minimum: 1 },
    thumbnail_camera: { type: 'string' },
    heldout_views: { type: 'integer', minimum: 0 },
  },
  required: [
    'splats',
    'ply_bytes',
    'spz_bytes',
    'sog_bytes',
    'splat_bytes',
    'cameras',
    'thumbnail_width',
    'thumbnail_height',
    'thumbnail_camera',
    'heldout_views',
  ],
  additionalProperties: false,
};

/** `metrics.renders` of the train stage's manifest (jobs/train/renders.py): files under `{prefix}train/`. */
export interface TrainRenders {
  thumbnail: { file: string; camera: string; width: number; height: number };
  heldout: { file: string; camera: string; psnr: number; ssim: number }[];
}

/** A file name inside the train folder: no scheme, no `..`, no leading slash. */
const trainFile = { type: 'string', pattern: '^(?!/)(?!.*(^|/)\\.\\.(/|$))[\\w./-]+\\.png$' } as const;

export const trainRendersSchema: JSONSchemaType<TrainRenders> = {
  type: 'object',
  properties: {
    thumbnail: {
      type: 'object',
      properties: {
        file: trainFile,
        camera: { type: 'string' },
        width: { type: 'integer', minimum: 1 },
        height: { type: 'integer', minimum: 1 },
      },
      required: ['file', 'camera', 'width', 'height'],
    },
    heldout: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          file: trainFile,
          camera: { type: 'string' },
          psnr: { type: 'number' },
          ssim: { type: 'number' },
        },
        required: ['file', 'camera', 'psnr', 'ssim'],
      },
    },
  },
  required: ['thumbnail', 'heldout'],
};
