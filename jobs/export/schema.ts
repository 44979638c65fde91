/** The export stage's parameters and the metrics it puts in its manifest. */
import type { JSONSchemaType } from 'ajv';

export interface ExportParams {
  /** Longer side of `thumbnail.png`; `thumbnail_small.png` is a quarter of it. */
  thumbnail_size: number;
  /** SPZ version: 3 is what Spark and most web viewers read; 4 is smaller but newer. */
  spz_version: 3 | 4;
}

export const exportParamsSchema: JSONSchemaType<ExportParams> = {
  type: 'object',
  properties: {
    thumbnail_size: { type: 'integer', minimum: 64, maximum: 2048, default: 512 },
    spz_version: { type: 'integer', enum: [3, 4], default: 3 },
  },
  required: [],
  additionalProperties: false,
};

export interface ExportMetrics {
  splats: number;
  ply_bytes: number;
  spz_bytes: number;
  splat_bytes: number;
  cameras: number;
  thumbnail_width: number;
  thumbnail_height: number;
  /** Whether the thumbnail looks through a reconstruction camera (else it frames the splats). */
  thumbnail_from_camera: boolean;
}

export const exportMetricsSchema: JSONSchemaType<ExportMetrics> = {
  type: 'object',
  properties: {
    splats: { type: 'integer', minimum: 1 },
    ply_bytes: { type: 'integer', minimum: 0 },
    spz_bytes: { type: 'integer', minimum: 0 },
    splat_bytes: { type: 'integer', minimum: 0 },
    cameras: { type: 'integer', minimum: 0 },
    thumbnail_width: { type: 'integer', minimum: 1 },
    thumbnail_height: { type: 'integer', minimum: 1 },
    thumbnail_from_camera: { type: 'boolean' },
  },
  required: [
    'splats',
    'ply_bytes',
    'spz_bytes',
    'splat_bytes',
    'cameras',
    'thumbnail_width',
    'thumbnail_height',
    'thumbnail_from_camera',
  ],
  additionalProperties: false,
};
