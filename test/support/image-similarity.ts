/**
 * How alike two pictures look, as a number a test can hold a floor to: the normalised
 * cross-correlation of their grey levels at a small common size (1 = the same picture up to
 * brightness and contrast, 0 = unrelated), so a blurry but right render scores high and a render
 * of the wrong place scores low.
 */
import sharp, { type Sharp } from 'sharp';

const SIZE = { width: 48, height: 64 };

async function grey(image: Sharp, size: { width: number; height: number }): Promise<Float64Array> {
  const pixels = await image.resize(size.width, size.height, { fit: 'fill' }).greyscale().raw().toBuffer();
  return Float64Array.from(pixels);
}

export async function similarity(
  a: Buffer | string,
  b: Buffer | string,
  size: { width: number; height: number } = SIZE,
): Promise<number> {
  const [x, y] = await Promise.all([grey(sharp(a), size), grey(sharp(b), size)]);
  const mean = (v: Float64Array) => v.reduce((s, t) => s + t, 0) / v.length;
  const [mx, my] = [mean(x), mean(y)];
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < x.length; i++) {
    const [dx, dy] = [x[i]! - mx, y[i]! - my];
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  return sxx > 0 && syy > 0 ? sxy / Math.sqrt(sxx * syy) : 0;
}
