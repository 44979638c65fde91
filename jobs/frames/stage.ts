/**
 * frames: the request's input → upright, size-capped JPEG frames. A video yields frames chosen
 * along the camera's travel (windows.ts): about `target_frames`, more when the motion needs them
 * to keep consecutive frames overlapping, each the sharpest of its step; every decoded frame's
 * scores go to `video_frames.json` so later stages can fetch nearby frames. An image set yields
 * all its photos. A clip that cannot reconstruct (too short, static, dark, featureless) is
 * refused here, before any later stage spends time on it.
 */
import { writeFile } from 'node:fs/promises';
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
import { checkImages, checkVideo, inputLimits, type InputLimits } from './limits.js';
import { probeVideo, type VideoInfo } from './probe.js';
import { clipProblem, type ClipRules } from './check.js';
import { VIDEO_FRAMES_FILE, type VideoFrames } from './table.js';
import { extractFrames, ffmpegVersion, scoreFrames } from './video.js';
import { chooseFrames } from './windows.js';

export interface FramesParams extends ClipRules, InputLimits {
  target_frames: number;
  max_step: number;
  max_frames: number;
  max_long_side: number;
  min_frames: number;
}

const paramsSchema: JSONSchemaType<FramesParams> = {
  type: 'object',
  properties: {
    target_frames: {
      description: 'Frames wanted from a video; more where its camera travel needs them to keep overlap (`max_step`).',
      type: 'integer',
      minimum: 2,
      maximum: 2000,
      default: 150,
    },
    max_step: {
      description:
        'The most view change between consecutive chosen frames, in frame widths (estimated from 96 px thumbnails).',
      type: 'number',
      exclusiveMinimum: 0,
      maximum: 1,
      default: 0.2,
    },
    max_frames: {
      description: 'Ceiling: a clip whose travel needs more frames than this is refused, not thinned.',
      type: 'integer',
      minimum: 2,
      maximum: 5000,
      default: 600,
    },
    min_duration_s: {
      description: 'Shorter clips are refused: a second of video rarely moves the camera enough.',
      type: 'number',
      minimum: 0,
      default: 2,
    },
    min_travel: {
      description:
        'The least camera travel over the clip, in frame widths; below it the clip is refused as a static shot.',
      type: 'number',
      minimum: 0,
      default: 0.5,
    },
    max_dark_share: {
      description: 'Refused when more than this share of frames is too dark to show anything.',
      type: 'number',
      minimum: 0,
      maximum: 1,
      default: 0.5,
    },
    min_detail: {
      description:
        'The least median detail (grey-level standard deviation at ~96 px); below it the clip is refused as featureless.',
      type: 'number',
      minimum: 0,
      default: 4,
    },
    max_long_side: {
      description: 'Frames are written upright with at most this many pixels on the long side.',
      type: 'integer',
      minimum: 64,
      maximum: 8192,
      default: 1600,
    },
    min_frames: {
      description: 'A video decoding to fewer frames is refused as too short.',
      type: 'integer',
      minimum: 2,
      maximum: 2000,
      default: 10,
    },
    max_duration_s: { description: 'Longer videos are refused.', type: 'number', exclusiveMinimum: 0, default: 900 },
    max_input_bytes: {
      description: 'Larger inputs are refused (default 4 GiB).',
      type: 'integer',
      minimum: 1,
      default: 4 * 1024 ** 3,
    },
    max_images: {
      description: 'Image sets (folders, `.zip`s) with more images are refused.',
      type: 'integer',
      minimum: 2,
      maximum: 5000,
      default: 1000,
    },
    max_video_pixels: {
      description: "Videos whose picture has more pixels are refused (default 8K UHD's 7680×4320).",
      type: 'integer',
      minimum: 1,
      default: 7680 * 4320,
    },
    max_image_pixels: {
      description: 'Photos with more pixels are refused, from their header, before they are decoded (default 64 MP).',
      type: 'integer',
      minimum: 1,
      default: 64_000_000,
    },
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
  /** Video frames only: why this frame (see windows.ts). */
  brightness?: number;
  /** The camera's travel since the clip's first frame, frame widths. */
  travel?: number;
  /** Estimated view change since the previous chosen frame, frame widths. */
  step?: number;
  /** 1 - step, floored at 0: the share of the view estimated to be shared with the previous frame. */
  overlap_previous?: number;
  /** How many frames of its step it was the sharpest of. */
  candidates?: number;
  width: number;
  height: number;
}

export interface VideoMetrics extends VideoInfo {
  frames_decoded: number;
  /** The camera's estimated travel over the whole clip, frame widths. */
  travel: number;
  /** The step the choice used: target_frames' spacing, or max_step where the travel needs more frames. */
  step: number;
  /**
   * What set the count: `target` (target_frames), `overlap` (max_step needed more), or `all` (a short or slow
   * clip: every distinct view it holds).
   */
  limited_by: 'target' | 'overlap' | 'all';
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
      required: [
        'duration_s',
        'fps',
        'width',
        'height',
        'rotation',
        'codec',
        'dynamic_range',
        'frames_decoded',
        'travel',
        'step',
        'limited_by',
      ],
      properties: {
        duration_s: { type: 'number' },
        fps: { type: 'number' },
        width: { type: 'integer' },
        height: { type: 'integer' },
        rotation: { type: 'integer', enum: [0, 90, 180, 270] },
        codec: { type: 'string' },
        dynamic_range: { type: 'string', enum: ['sdr', 'hlg', 'pq'] },
        frames_decoded: { type: 'integer' },
        travel: { type: 'number' },
        step: { type: 'number' },
        limited_by: { type: 'string', enum: ['target', 'overlap', 'all'] },
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
          brightness: { type: 'number', nullable: true },
          travel: { type: 'number', nullable: true },
          step: { type: 'number', nullable: true },
          overlap_previous: { type: 'number', nullable: true },
          candidates: { type: 'integer', nullable: true },
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

const round = (v: number, digits = 4) => Number(v.toFixed(digits));

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
  const limits = inputLimits(params, ctx.env);
  const { path, record } = await ctx.fetchInput(ctx.contract.inputUri);
  if (record.size > limits.max_input_bytes) {
    throw new InputRefused(
      `the video is ${record.size} bytes; at most ${limits.max_input_bytes} are accepted (max_input_bytes)`,
    );
  }
  ctx.tool('ffmpeg', await ffmpegVersion());
  const info = await ctx.timed('probe', () => probeVideo(path));
  checkVideo(info, limits);
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
      `the video is too short: ${scored.length} frames decoded, at least ${params.min_frames} needed: film a slow walk around the subject, 10 to 60 s long`,
    );
  }
  const problem = clipProblem(scored, params);
  if (problem) throw new InputRefused(problem);
  const all = scored.length <= params.target_frames;
  const { step, choices } = all
    ? {
        step: 0,
        choices: scored.map((frame, i) => ({
          frame,
          candidates: 1,
          step: frame.travel - (scored[i - 1]?.travel ?? frame.travel),
        })),
      }
    : chooseFrames(scored, { target: params.target_frames, maxStep: params.max_step });
  // Fewer than asked for and than later stages need: the clip has no more distinct views to give
  // (a short clip takes every frame, but frames where the view has not moved are not views).
  const views = all ? scored.filter((f, i) => i === 0 || f.travel > scored[i - 1]!.travel).length : choices.length;
  if (views < Math.min(params.min_frames, params.target_frames)) {
    throw new InputRefused(
      `the clip gives only ${views} distinct views (of ${scored.length} frames decoded; the camera travels about ${round(scored.at(-1)!.travel, 2)} frame widths); at least ${params.min_frames} are needed: film longer, walking slowly around the subject`,
    );
  }
  if (choices.length > params.max_frames) {
    throw new InputRefused(
      `the camera travels so far (about ${round(scored.at(-1)!.travel, 1)} frame widths) that keeping consecutive frames overlapping needs ${choices.length} frames, more than max_frames ${params.max_frames}: film a shorter clip or move more slowly, or raise max_frames`,
    );
  }
  const size = await ctx.timed('extract', () =>
    extractFrames(
      path,
      info,
      choices.map((c) => c.frame.index),
      {
        longSide: params.max_long_side,
        destination: (i) => join(ctx.outDir, frameName(i)),
        onWritten: (n) => ctx.progress(0.6 + (0.35 * n) / choices.length, 'writing frames'),
      },
    ),
  );
  const frames = choices.map(({ frame, candidates, step }, i): FrameRecord => ({
    file: frameName(i),
    source: String(frame.index),
    time_s: frame.time_s,
    sharpness: round(frame.sharpness, 2),
    brightness: round(frame.brightness, 2),
    travel: round(frame.travel),
    step: round(step),
    overlap_previous: round(Math.max(0, 1 - step)),
    candidates,
    ...size,
  }));
  const table: VideoFrames = {
    long_side: params.max_long_side,
    index: scored.map((f) => f.index),
    time_s: scored.map((f) => round(f.time_s)),
    sharpness: scored.map((f) => round(f.sharpness, 2)),
    brightness: scored.map((f) => round(f.brightness, 2)),
    travel: scored.map((f) => round(f.travel)),
  };
  await writeFile(join(ctx.outDir, VIDEO_FRAMES_FILE), JSON.stringify(table));
  // A clip with fewer distinct views than target_frames gave all it has, whichever branch chose them.
  const limitedBy =
    all || choices.length < params.target_frames
      ? 'all'
      : choices.length > params.target_frames && step === params.max_step
        ? 'overlap'
        : 'target';
  ctx.log.info('frames chosen', { decoded: scored.length, chosen: frames.length, step, limited_by: limitedBy });
  return {
    source: 'video',
    count: frames.length,
    video: {
      ...info,
      frames_decoded: scored.length,
      travel: round(scored.at(-1)?.travel ?? 0),
      step: round(step),
      limited_by: limitedBy,
    },
    frames,
  };
}

async function fromImages(ctx: StageContext<FramesParams>, kind: 'zip' | 'folder'): Promise<FramesMetrics> {
  const { params, contract, storage } = ctx;
  const limits = inputLimits(params, ctx.env);
  let photos: { path: string; source: string }[];
  if (kind === 'zip') {
    const { path } = await ctx.fetchInput(contract.inputUri);
    photos = await ctx.timed('unzip', () =>
      extractZipImages(path, join(ctx.scratch, 'photos'), {
        maxBytes: limits.max_input_bytes,
        maxCount: limits.max_images,
      }),
    );
  } else {
    const prefix = contract.inputUri.endsWith('/') ? contract.inputUri : contract.inputUri + '/';
    const uris = (await storage.list(prefix)).filter(isImageName);
    if (uris.length > limits.max_images) {
      throw new InputRefused(
        `the folder holds ${uris.length} photos; at most ${limits.max_images} are accepted (max_images)`,
      );
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
    throw new InputRefused(
      photos.length === 0
        ? 'the input holds no photos (JPEG, PNG, HEIC/HEIF, WebP or TIFF): send the photos themselves, or a video'
        : `the input holds ${photos.length} photos; at least ${params.min_frames} are needed: send 20 or more photos taken all around the subject, each overlapping the one before`,
    );
  }
  ctx.tool('libvips', sharp.versions.vips);
  await ctx.timed('check', () => checkImages(photos, limits));
  const frames = await ctx.timed('normalise', async () => {
    const records: FrameRecord[] = [];
    for (const [i, photo] of photos.entries()) {
      const size = await normaliseImage(photo.path, join(ctx.outDir, frameName(i)), params.max_long_side, photo.source);
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
