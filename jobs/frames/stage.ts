/**
 * frames: the request's input → upright, size-capped JPEG frames. A video yields `target_frames`
 * frames, each the sharpest of its time window; an image set yields all its photos.
 */
import { join } from 'node:path';
import type { JSONSchemaType } from 'ajv';
import sharp from 'sharp';
import { isImageName } from '../image/names.js';
import { normaliseImage } from '../image/normalise.js';
import { ExecError } from '../runtime/exec.js';
import { InputRefused } from '../runtime/errors.js';
import { checkInputLocation } from '../runtime/input-location.js';
import { defineStage, type StageContext } from '../runtime/stage.js';
import type { Storage } from '../runtime/storage.js';
import { extractZipImages } from './image-set.js';
import { probeVideo, type VideoInfo } from './probe.js';
import { extractFrames, ffmpegVersion, scoreFrames } from './video.js';
import { sharpestPerWindow } from './windows.js';

export interface FramesParams {
  target_frames: number;
  max_long_side: number;
  min_frames: number;
  max_duration_s: number;
  max_input_bytes: number;
  max_images: number;
}

const paramsSchema: JSONSchemaType<FramesParams> = {
  type: 'object',
  properties: {
    target_frames: { type: 'integer', minimum: 2, maximum: 2000, default: 150 },
    max_long_side: { type: 'integer', minimum: 64, maximum: 8192, default: 1600 },
    min_frames: { type: 'integer', minimum: 2, maximum: 2000, default: 10 },
    max_duration_s: { type: 'number', exclusiveMinimum: 0, default: 900 },
    max_input_bytes: { type: 'integer', minimum: 1, default: 4 * 1024 ** 3 },
    max_images: { type: 'integer', minimum: 2, maximum: 5000, default: 1000 },
  },
  required: [],
  additionalProperties: false,
};

export interface FrameRecord {
  file: string;
  /** The video's frame index, or the photo's name in the input. */
  source: string;
  /** Only for frames of a video. */
  time_s?: number;
  sharpness?: number;
  width: number;
  height: number;
}

export interface VideoMetrics extends VideoInfo {
  frames_decoded: number;
}

export interface FramesMetrics {
  source: 'video' | 'images';
  count: number;
  /** Only for a video input. */
  video?: VideoMetrics;
  frames: FrameRecord[];
}

const metricsSchema: JSONSchemaType<FramesMetrics> = {
  type: 'object',
  properties: {
    source: { type: 'string', enum: ['video', 'images'] },
    count: { type: 'integer', minimum: 1 },
    video: {
      type: 'object',
      nullable: true,
      required: ['duration_s', 'fps', 'width', 'height', 'rotation', 'codec', 'frames_decoded'],
      properties: {
        duration_s: { type: 'number' },
        fps: { type: 'number' },
        width: { type: 'integer' },
        height: { type: 'integer' },
        rotation: { type: 'integer', enum: [0, 90, 180, 270] },
        codec: { type: 'string' },
        frames_decoded: { type: 'integer' },
      },
      additionalProperties: false,
    },
    frames: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          file: { type: 'string' },
          source: { type: 'string' },
          time_s: { type: 'number', nullable: true },
          sharpness: { type: 'number', nullable: true },
          width: { type: 'integer' },
          height: { type: 'integer' },
        },
        required: ['file', 'source', 'width', 'height'],
        additionalProperties: false,
      },
    },
  },
  required: ['source', 'count', 'frames'],
  additionalProperties: false,
};

/** The long side frames are scored at: enough detail to rank sharpness, cheap to decode. */
const SCORING_LONG_SIDE = 480;

export const frameName = (index: number): string => `frame_${String(index).padStart(5, '0')}.jpg`;

type InputKind = 'video' | 'zip' | 'folder';

async function inputKind(storage: Storage, uri: string): Promise<InputKind> {
  if (uri.endsWith('/')) return 'folder';
  if (/\.zip$/i.test(uri)) return 'zip';
  if (await storage.exists(uri)) return 'video';
  if ((await storage.list(uri + '/')).length > 0) return 'folder';
  throw new InputRefused(`input not found: ${uri}`);
}

async function fromVideo(ctx: StageContext<FramesParams>): Promise<FramesMetrics> {
  const { params } = ctx;
  const { path, record } = await ctx.fetchInput(ctx.contract.inputUri);
  if (record.size > params.max_input_bytes) {
    throw new InputRefused(`the video is ${record.size} bytes; at most ${params.max_input_bytes} are accepted`);
  }
  ctx.tool('ffmpeg', await ffmpegVersion());
  const info = await ctx.timed('probe', () => probeVideo(path));
  if (info.duration_s > params.max_duration_s) {
    throw new InputRefused(
      `the video lasts ${info.duration_s.toFixed(1)} s; at most ${params.max_duration_s} s are accepted`,
    );
  }
  const expected = Math.max(1, Math.round(info.duration_s * info.fps));
  const scored = await ctx.timed('score', async () => {
    try {
      return await scoreFrames(path, info, {
        longSide: SCORING_LONG_SIDE,
        onFrame: (n) => ctx.progress(0.6 * Math.min(1, n / expected), 'scoring'),
      });
    } catch (error) {
      if (error instanceof ExecError) throw new InputRefused(`the video cannot be decoded (${error.message})`);
      throw error;
    }
  });
  if (scored.length < params.min_frames) {
    throw new InputRefused(
      `the video is too short: ${scored.length} frames decoded, at least ${params.min_frames} needed`,
    );
  }
  const chosen = sharpestPerWindow(scored, params.target_frames);
  const size = await ctx.timed('extract', () =>
    extractFrames(
      path,
      info,
      chosen.map((f) => f.index),
      {
        longSide: params.max_long_side,
        destination: (i) => join(ctx.outDir, frameName(i)),
        onWritten: (n) => ctx.progress(0.6 + (0.35 * n) / chosen.length, 'writing frames'),
      },
    ),
  );
  const frames = chosen.map((frame, i) => ({
    file: frameName(i),
    source: String(frame.index),
    time_s: frame.time_s,
    sharpness: frame.sharpness,
    ...size,
  }));
  return { source: 'video', count: frames.length, video: { ...info, frames_decoded: scored.length }, frames };
}

async function fromImages(ctx: StageContext<FramesParams>, kind: 'zip' | 'folder'): Promise<FramesMetrics> {
  const { params, contract, storage } = ctx;
  let photos: { path: string; source: string }[];
  if (kind === 'zip') {
    const { path } = await ctx.fetchInput(contract.inputUri);
    photos = await ctx.timed('unzip', () =>
      extractZipImages(path, join(ctx.scratch, 'photos'), {
        maxBytes: params.max_input_bytes,
        maxCount: params.max_images,
      }),
    );
  } else {
    const prefix = contract.inputUri.endsWith('/') ? contract.inputUri : contract.inputUri + '/';
    const uris = (await storage.list(prefix)).filter(isImageName);
    if (uris.length > params.max_images) {
      throw new InputRefused(`the folder holds ${uris.length} photos; at most ${params.max_images} are accepted`);
    }
    photos = [];
    for (const [index, uri] of uris.entries()) {
      const extension = uri.slice(uri.lastIndexOf('.')).toLowerCase();
      const { path } = await ctx.fetchInput(uri, join('photos', `${String(index).padStart(5, '0')}${extension}`));
      photos.push({ path, source: uri.slice(prefix.length) });
      ctx.progress((0.3 * (index + 1)) / uris.length, 'downloading');
    }
  }
  if (photos.length < params.min_frames) {
    throw new InputRefused(`the input holds ${photos.length} photos; at least ${params.min_frames} are needed`);
  }
  ctx.tool('libvips', sharp.versions.vips);
  const frames = await ctx.timed('normalise', async () => {
    const records: FrameRecord[] = [];
    for (const [i, photo] of photos.entries()) {
      const size = await normaliseImage(photo.path, join(ctx.outDir, frameName(i)), params.max_long_side);
      records.push({ file: frameName(i), source: photo.source, ...size });
      ctx.progress(0.3 + (0.65 * (i + 1)) / photos.length, 'writing frames');
    }
    return records;
  });
  return { source: 'images', count: frames.length, frames };
}

export const framesStage = defineStage<FramesParams, FramesMetrics>({
  name: 'frames',
  params: paramsSchema,
  metrics: metricsSchema,
  async run(ctx) {
    checkInputLocation(ctx.contract.inputUri, ctx.env);
    const kind = await inputKind(ctx.storage, ctx.contract.inputUri);
    const metrics = kind === 'video' ? await fromVideo(ctx) : await fromImages(ctx, kind);
    return { metrics };
  },
});
