/**
 * How big an input the frames stage takes: bytes, a video's duration and picture size, a photo set's
 * count and each photo's pixels. A request's params may lower each limit; the deployment's ceilings
 * (SPLATFLOW_MAX_* on the job, Terraform's `input_limits`) cap them, so no caller can raise one. Each
 * check reads only what a header says (ffprobe's answer, an image's header, a zip's directory), so an
 * input over a limit is refused before it is decoded in full, with the limit named.
 */
import sharp from 'sharp';
import { ConfigError } from '../../lib/config.js';
import { InputRefused } from '../runtime/errors.js';

export interface InputLimits {
  max_input_bytes: number;
  max_duration_s: number;
  /** A video's coded width × height. */
  max_video_pixels: number;
  max_images: number;
  /** One photo's width × height (a 100-megapixel photo is refused before it is decoded). */
  max_image_pixels: number;
}

/** Each limit's ceiling variable on the job (one list: the stage, Terraform and the docs use it). */
export const LIMIT_ENV: Record<keyof InputLimits, string> = {
  max_input_bytes: 'SPLATFLOW_MAX_INPUT_BYTES',
  max_duration_s: 'SPLATFLOW_MAX_DURATION_S',
  max_video_pixels: 'SPLATFLOW_MAX_VIDEO_PIXELS',
  max_images: 'SPLATFLOW_MAX_IMAGES',
  max_image_pixels: 'SPLATFLOW_MAX_IMAGE_PIXELS',
};

/** The limits in force: the request's, each capped by the job's ceiling where one is set. */
export function inputLimits(params: InputLimits, env: Record<string, string | undefined>): InputLimits {
  const limits = { ...params };
  for (const [name, variable] of Object.entries(LIMIT_ENV) as Array<[keyof InputLimits, string]>) {
    const text = env[variable];
    if (text === undefined || text === '') continue;
    const ceiling = Number(text);
    if (!Number.isSafeInteger(ceiling) || ceiling < 1) throw new ConfigError(`${variable} must be a positive integer`);
    limits[name] = Math.min(limits[name], ceiling);
  }
  return limits;
}

const megapixels = (pixels: number) => `${(pixels / 1e6).toFixed(1)} megapixels`;

/** Checks what ffprobe said of a video against the limits. */
export function checkVideo(info: { duration_s: number; width: number; height: number }, limits: InputLimits): void {
  if (info.duration_s > limits.max_duration_s) {
    throw new InputRefused(
      `the video lasts ${info.duration_s.toFixed(1)} s; at most ${limits.max_duration_s} s are accepted (max_duration_s)`,
    );
  }
  const pixels = info.width * info.height;
  if (pixels > limits.max_video_pixels) {
    throw new InputRefused(
      `the video is ${info.width}×${info.height} (${megapixels(pixels)}); at most ${megapixels(limits.max_video_pixels)} are accepted (max_video_pixels)`,
    );
  }
}

/**
 * Reads each photo's header (not its pixels) and refuses the first over `max_image_pixels`. A header libvips
 * cannot read is left to the decoder that normalises the photo, which says why it cannot.
 */
export async function checkImages(photos: Array<{ path: string; source: string }>, limits: InputLimits): Promise<void> {
  for (const photo of photos) {
    const header = await sharp(photo.path)
      .metadata()
      .catch(() => undefined);
    if (!header) continue;
    const { width, height } = header;
    const pixels = (width ?? 0) * (height ?? 0);
    if (pixels > limits.max_image_pixels) {
      throw new InputRefused(
        `the photo ${photo.source} is ${width}×${height} (${megapixels(pixels)}); at most ${megapixels(limits.max_image_pixels)} are accepted (max_image_pixels)`,
      );
    }
  }
}
