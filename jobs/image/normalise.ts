/**
 * Every frame the pipeline works on is an upright JPEG whose long side is at most the cap,
 * whether it came out of a video or from a user's photo. HEIC/HEIF photos (an iPhone's default)
 * hold HEVC, which the libvips inside sharp cannot decode: libheif's `heif-convert` (Debian's
 * libheif-examples, with libde265 as its HEVC decoder) turns them into a lossless PNG first.
 */
import { rm } from 'node:fs/promises';
import sharp from 'sharp';
import { exec } from '../runtime/exec.js';
import { InputRefused } from '../runtime/errors.js';

export interface NormalisedImage {
  width: number;
  height: number;
}

const HEIF = /\.hei[cf]$/i;

/**
 * Decodes a HEIF photo to `png`, upright: libheif applies the container's rotation and mirror
 * (irot/imir), which is where HEIF keeps orientation; its EXIF tag is then stale, so not read.
 */
async function decodeHeif(source: string, png: string): Promise<void> {
  await exec('heif-convert', ['--quiet', source, png]);
}

/** `name` is the photo's name in the user's upload, for messages. */
export async function normaliseImage(
  source: string,
  destination: string,
  maxLongSide: number,
  name: string,
): Promise<NormalisedImage> {
  const heif = HEIF.test(source);
  const decoded = heif ? `${destination}.png` : source;
  try {
    if (heif) await decodeHeif(source, decoded);
    let image = sharp(decoded);
    // rotate() with no angle applies the EXIF orientation and drops the tag.
    if (!heif) image = image.rotate();
    const info = await image
      .resize({ width: maxLongSide, height: maxLongSide, fit: 'inside', withoutEnlargement: true })
      .jpeg({ quality: 95 })
      .toFile(destination);
    return { width: info.width, height: info.height };
  } catch {
    // The decoders' own words name temporary paths and internals a user can do nothing with.
    throw new InputRefused(
      `cannot decode photo ${name}: it is not a readable JPEG, PNG, HEIC/HEIF, WebP or TIFF image (damaged, or another format): export it as JPEG and send it again`,
    );
  } finally {
    if (heif) await rm(decoded, { force: true });
  }
}
