/** Per-image quality scores, computed on the decoded greyscale pixels. */
import sharp from 'sharp';
import { laplacianVariance, type GreyImage } from './sharpness.js';

export interface Exposure {
  /** Mean grey level, 0..255. */
  brightness: number;
  /** Fraction of pixels crushed to black (≤ 4). */
  shadows: number;
  /** Fraction of pixels blown to white (≥ 251). */
  highlights: number;
}

export function exposure({ data }: GreyImage): Exposure {
  let sum = 0;
  let dark = 0;
  let bright = 0;
  for (const v of data) {
    sum += v;
    if (v <= 4) dark++;
    else if (v >= 251) bright++;
  }
  const n = data.length || 1;
  return { brightness: sum / n, shadows: dark / n, highlights: bright / n };
}

/**
 * Difference hash: the image shrunk to 9×8 grey, one bit per horizontal neighbour pair saying
 * whether brightness rises. Re-encoding, small shifts and exposure drift leave it nearly
 * unchanged, so a small Hamming distance means "the same view".
 */
export async function dHash(path: string): Promise<string> {
  const data = await sharp(path).greyscale().resize(9, 8, { fit: 'fill' }).raw().toBuffer();
  let bits = 0n;
  for (let y = 0; y < 8; y++) {
    for (let x = 0; x < 8; x++) {
      bits = (bits << 1n) | ((data[y * 9 + x + 1] ?? 0) > (data[y * 9 + x] ?? 0) ? 1n : 0n);
    }
  }
  return bits.toString(16).padStart(16, '0');
}

export function hammingDistance(a: string, b: string): number {
  let x = BigInt(`0x${a}`) ^ BigInt(`0x${b}`);
  let count = 0;
  while (x) {
    count += Number(x & 1n);
    x >>= 1n;
  }
  return count;
}

export interface ImageScores extends Exposure {
  sharpness: number;
  dhash: string;
}

export async function scoreImage(path: string): Promise<ImageScores> {
  const { data, info } = await sharp(path).greyscale().raw().toBuffer({ resolveWithObject: true });
  const grey = { data, width: info.width, height: info.height };
  return { sharpness: laplacianVariance(grey), ...exposure(grey), dhash: await dHash(path) };
}
