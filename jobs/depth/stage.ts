/**
 * depth: Depth-Anything-V2 (ONNX) on every kept frame. The output is the model's relative
 * inverse depth (larger = nearer, unknown scale and shift), stored per frame as a 16-bit PNG
 * spanning that frame's own [min, max], which the manifest records so the float values can be
 * recovered: value = min + png / 65535 × (max − min). Aligning it to the sparse reconstruction's
 * scale is training's job.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { JSONSchemaType } from 'ajv';
import sharp from 'sharp';
import { loadConfig } from '../../lib/config.js';
import { isImageName } from '../image/names.js';
import { InputRefused } from '../runtime/errors.js';
import { defineStage, type StageContext } from '../runtime/stage.js';
import { modelInputSize, normaliseRgb, quantise, resizeBilinear } from './geometry.js';
import { loadModel, ortVersion, predict, type LoadedModel, type ProviderChoice } from './model.js';

export interface DepthParams {
  model_uri?: string;
  model_sha256?: string;
  batch_size: number;
  execution_provider: ProviderChoice;
  input_size: number;
  preview_long_side: number;
}

const SHA256 = '^[0-9a-f]{64}$';

const paramsSchema: JSONSchemaType<DepthParams> = {
  type: 'object',
  properties: {
    model_uri: {
      description:
        "Path or `gs://` URI of the Depth-Anything-V2 ONNX model; else the image's `SPLATFLOW_DEPTH_MODEL_URI`.",
      type: 'string',
      minLength: 1,
      nullable: true,
    },
    model_sha256: {
      description: "sha256 (hex) the model must have; else the image's `SPLATFLOW_DEPTH_MODEL_SHA256`.",
      type: 'string',
      pattern: SHA256,
      nullable: true,
    },
    batch_size: {
      description: 'Frames per model run (a model with a fixed batch size uses its own).',
      type: 'integer',
      minimum: 1,
      maximum: 64,
      default: 4,
    },
    execution_provider: {
      description: '`auto`: CUDA when installed and a GPU answers, else the CPU.',
      type: 'string',
      enum: ['auto', 'cuda', 'cpu'],
      default: 'auto',
    },
    input_size: {
      description: 'The short side the model sees (Depth-Anything-V2 is trained at 518).',
      type: 'integer',
      minimum: 14,
      maximum: 2044,
      multipleOf: 14,
      default: 518,
    },
    preview_long_side: {
      description: 'Long side of the `preview/` JPEGs.',
      type: 'integer',
      minimum: 16,
      maximum: 4096,
      default: 480,
    },
  },
  required: [],
  additionalProperties: false,
};

interface ImageConfig {
  SPLATFLOW_DEPTH_MODEL_URI?: string;
  SPLATFLOW_DEPTH_MODEL_SHA256?: string;
}

export const imageConfigSchema: JSONSchemaType<ImageConfig> = {
  type: 'object',
  properties: {
    SPLATFLOW_DEPTH_MODEL_URI: {
      description:
        "Path or `gs://` URI of the Depth-Anything-V2 ONNX model the image provides; a request's `model_uri` wins.",
      type: 'string',
      nullable: true,
    },
    SPLATFLOW_DEPTH_MODEL_SHA256: {
      description: 'sha256 the model must have (hex).',
      type: 'string',
      pattern: SHA256,
      nullable: true,
    },
  },
  required: [],
};

export interface DepthFrame {
  file: string;
  depth: string;
  preview: string;
  width: number;
  height: number;
  model_width: number;
  model_height: number;
  min: number;
  max: number;
}

export interface DepthMetrics {
  encoding: 'relative_inverse_depth_u16';
  model: { uri: string; sha256: string; input: string; output: string; input_shape: string[] };
  execution_provider: 'cuda' | 'cpu';
  batch_size: number;
  count: number;
  frames_per_second: number;
  frames: DepthFrame[];
}

const integer = { type: 'integer' } as const;
const number = { type: 'number' } as const;
const string = { type: 'string' } as const;

const metricsSchema: JSONSchemaType<DepthMetrics> = {
  type: 'object',
  properties: {
    encoding: { type: 'string', const: 'relative_inverse_depth_u16' },
    model: {
      type: 'object',
      properties: {
        uri: string,
        sha256: { type: 'string', pattern: SHA256 },
        input: string,
        output: string,
        input_shape: { type: 'array', items: string },
      },
      required: ['uri', 'sha256', 'input', 'output', 'input_shape'],
      additionalProperties: false,
    },
    execution_provider: { type: 'string', enum: ['cuda', 'cpu'] },
    batch_size: integer,
    count: integer,
    frames_per_second: number,
    frames: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          file: string,
          depth: string,
          preview: string,
          width: integer,
          height: integer,
          model_width: integer,
          model_height: integer,
          min: number,
          max: number,
        },
        required: ['file', 'depth', 'preview', 'width', 'height', 'model_width', 'model_height', 'min', 'max'],
        additionalProperties: false,
      },
    },
  },
  required: ['encoding', 'model', 'execution_provider', 'batch_size', 'count', 'frames_per_second', 'frames'],
  additionalProperties: false,
};

interface Frame {
  file: string;
  path: string;
  width: number;
  height: number;
  model: { width: number; height: number };
}

/** Consecutive frames that share a model input size, at most `size` at a time. */
export function batches<T extends { model: { width: number; height: number } }>(
  frames: readonly T[],
  size: number,
): T[][] {
  const groups: T[][] = [];
  for (const frame of frames) {
    const last = groups[groups.length - 1];
    const head = last?.[0];
    if (
      last &&
      head &&
      last.length < size &&
      head.model.width === frame.model.width &&
      head.model.height === frame.model.height
    ) {
      last.push(frame);
    } else groups.push([frame]);
  }
  return groups;
}

async function fetchModel(ctx: StageContext<DepthParams>): Promise<{ path: string; uri: string; sha256: string }> {
  const config = loadConfig(imageConfigSchema, ctx.env);
  const uri = ctx.params.model_uri ?? config.SPLATFLOW_DEPTH_MODEL_URI;
  const expected = ctx.params.model_uri
    ? ctx.params.model_sha256
    : (ctx.params.model_sha256 ?? config.SPLATFLOW_DEPTH_MODEL_SHA256);
  if (!uri) throw new InputRefused('no depth model configured: set params.model_uri or SPLATFLOW_DEPTH_MODEL_URI');
  const { path, record } = await ctx.fetchInput(uri, 'model.onnx');
  if (expected && record.sha256 !== expected) {
    throw new InputRefused(`the depth model's sha256 is ${record.sha256}, expected ${expected}`);
  }
  return { path, uri, sha256: record.sha256 };
}

async function runBatch(
  model: LoadedModel,
  group: Frame[],
  outDir: string,
  previewSide: number,
): Promise<DepthFrame[]> {
  const size = group[0]?.model ?? { width: 0, height: 0 };
  const pixels = size.width * size.height;
  const input = new Float32Array(group.length * 3 * pixels);
  for (const [i, frame] of group.entries()) {
    // Depth-Anything-V2 resizes with bicubic interpolation (cv2.INTER_CUBIC).
    const rgb = await sharp(frame.path)
      .removeAlpha()
      .toColourspace('srgb')
      .resize(size.width, size.height, { fit: 'fill', kernel: 'cubic' })
      .raw()
      .toBuffer();
    normaliseRgb(rgb, pixels, input, i * 3 * pixels);
  }
  const prediction = await predict(model, input, group.length, size);
  const records: DepthFrame[] = [];
  for (const [i, frame] of group.entries()) {
    const full = resizeBilinear(
      prediction.maps[i] as Float32Array,
      prediction.width,
      prediction.height,
      frame.width,
      frame.height,
    );
    const { data, min, max } = quantise(full);
    const stem = frame.file.replace(/\.[^.]+$/, '');
    const depth = `${stem}.png`;
    const preview = `preview/${stem}.jpg`;
    const png = sharp(data, { raw: { width: frame.width, height: frame.height, channels: 1 } }).toColourspace('grey16');
    await png.clone().png().toFile(join(outDir, depth));
    await png
      .clone()
      .toColourspace('b-w')
      .resize({ width: previewSide, height: previewSide, fit: 'inside', withoutEnlargement: true })
      .jpeg({ quality: 85 })
      .toFile(join(outDir, preview));
    records.push({
      file: frame.file,
      depth,
      preview,
      width: frame.width,
      height: frame.height,
      model_width: size.width,
      model_height: size.height,
      min,
      max,
    });
  }
  return records;
}

export const depthStage = defineStage<DepthParams, DepthMetrics>({
  name: 'depth',
  params: paramsSchema,
  metrics: metricsSchema,
  async run(ctx) {
    const { params } = ctx;
    const { dir, manifest } = await ctx.readStage('filter');
    const model = await fetchModel(ctx);
    const loaded = await ctx.timed('load_model', () => loadModel(model.path, params.execution_provider));
    ctx.tool('onnxruntime-node', ortVersion());
    ctx.tool('libvips', sharp.versions.vips);
    ctx.log.info('depth model loaded', {
      provider: loaded.provider,
      input: loaded.inputName,
      shape: loaded.inputShape,
    });

    const frames: Frame[] = [];
    for (const output of manifest.outputs.filter((o) => isImageName(o.path))) {
      const path = join(dir, output.path);
      const { width = 0, height = 0 } = await sharp(path).metadata();
      const modelSize = loaded.fixedSize ?? modelInputSize(width, height, params.input_size);
      frames.push({ file: output.path, path, width, height, model: modelSize });
    }
    const batchSize = loaded.fixedBatch ?? params.batch_size;
    await mkdir(join(ctx.outDir, 'preview'), { recursive: true });
    const records: DepthFrame[] = [];
    const begin = performance.now();
    await ctx.timed('infer', async () => {
      for (const group of batches(frames, batchSize)) {
        records.push(...(await runBatch(loaded, group, ctx.outDir, params.preview_long_side)));
        ctx.progress((0.9 * records.length) / frames.length, 'depth');
      }
    });
    const seconds = (performance.now() - begin) / 1000;
    await loaded.session.release();
    return {
      metrics: {
        encoding: 'relative_inverse_depth_u16',
        model: {
          uri: model.uri,
          sha256: model.sha256,
          input: loaded.inputName,
          output: loaded.outputName,
          input_shape: loaded.inputShape.map(String),
        },
        execution_provider: loaded.provider,
        batch_size: batchSize,
        count: records.length,
        frames_per_second: Number((records.length / Math.max(seconds, 1e-6)).toFixed(3)),
        frames: records,
      },
    };
  },
});
