/**
 * Every frame the pipeline works on is an upright JPEG whose long side is at most the cap,
 * whether it came out of a video or from a user's photo.
 */
import sharp from 'sharp';
import { InputRefused } from '../runtime/errors.js';

export interface NormalisedImage {
  width: number;
  height: number;
}

export async function normaliseImage(
  source: string,
  destination: string,
  maxLongSide: number,
): Promise<NormalisedImage> {
  try {
    // rotate() with no angle applies the EXIF orientation and drops the tag.
    const info = await sharp(source)
      .rotate()
      .resize({ width: maxLongSide, height: maxLongSide, fit: 'inside', withoutEnlargement: true })
      .jpeg({ quality: 95 })
      .toFile(destination);
    return { width: info.width, height: info.height };
  } catch (error) {
    throw new InputRefused(
      `cannot decode image ${source.slice(source.lastIndexOf('/') + 1)}: ${(error as Error).message}`,
    );
  }
}
