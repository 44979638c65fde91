/**
 * Sharpness as the variance of the 4-neighbour Laplacian over a greyscale image, border pixels
 * left out. Computed directly on the 8-bit samples in signed arithmetic: libvips' 8-bit
 * convolve clips the negative half and `stats()` after `convolve` describes the input (docs/machine-notes.md),
 * and a plain loop is also faster than a round trip through sharp for the small frames scored.
 */
export interface GreyImage {
  data: Uint8Array;
  width: number;
  height: number;
}

export function laplacianVariance({ data, width, height }: GreyImage): number {
  let sum = 0;
  let sumSquares = 0;
  let count = 0;
  for (let y = 1; y < height - 1; y++) {
    const row = y * width;
    for (let x = 1; x < width - 1; x++) {
      const i = row + x;
      const v =
        (data[i - width] as number) +
        (data[i + width] as number) +
        (data[i - 1] as number) +
        (data[i + 1] as number) -
        4 * (data[i] as number);
      sum += v;
      sumSquares += v * v;
      count++;
    }
  }
  if (count === 0) return 0;
  const mean = sum / count;
  return sumSquares / count - mean * mean;
}
