/**
 * Two passes of ffmpeg over a video, both streaming raw frames into Node: a small greyscale
 * decode of every frame to score its sharpness, then a decode at the output size that keeps only
 * the chosen frames. ffmpeg applies the rotation metadata itself (autorotate), so frames come
 * out upright. (Picking frames with a `select='eq(n,a)+eq(n,b)+…'` filter instead breaks ffmpeg's
 * expression parser beyond ~100 frames.)
 */
import sharp from 'sharp';
import { exposure } from '../image/scores.js';
import { laplacianVariance } from '../image/sharpness.js';
import { exec } from '../runtime/exec.js';
import { displaySize, type DynamicRange, type VideoInfo } from './probe.js';
import { MotionTracker, thumbnail } from './motion.js';
import type { ScoredFrame } from './windows.js';

const SHOWINFO = /\bn:\s*(\d+)\s+pts:\s*-?\d+\s+pts_time:\s*(-?[\d.]+)/;

export interface Size {
  width: number;
  height: number;
}

/** Even dimensions no larger than `longSide` (never enlarged), keeping the displayed aspect ratio. */
export function scaledSize(info: VideoInfo, longSide: number): Size {
  const shown = displaySize(info);
  const scale = Math.min(1, longSide / Math.max(shown.width, shown.height));
  const even = (v: number) => Math.max(2, Math.round((v * scale) / 2) * 2);
  return { width: even(shown.width), height: even(shown.height) };
}

/**
 * HDR to SDR BT.709, ahead of any scaling: linear light with BT.2408's reference white (203 nits)
 * at 1.0, as phones grade diffuse white, then highlights above it compressed (Möbius: linear
 * below, so the SDR range keeps its contrast). The input's transfer and BT.2020 primaries are
 * named, not read from the frames, so a Dolby Vision stream without tags is decoded as its base layer.
 */
export function toneMap(range: DynamicRange): string[] {
  if (range === 'sdr') return [];
  const transfer = range === 'hlg' ? 'arib-std-b67' : 'smpte2084';
  return [
    `zscale=tin=${transfer}:pin=bt2020:min=bt2020nc:t=linear:npl=203`,
    'format=gbrpf32le',
    'zscale=p=bt709',
    'tonemap=mobius:desat=0',
    'zscale=t=bt709:m=bt709:r=tv',
  ];
}

/**
 * Decodes the first video stream at `size` in `pixelFormat` and hands each frame's bytes to
 * `onFrame` with its decode-order index; `onStderrLine` sees ffmpeg's log lines.
 */
async function decodeRaw(
  path: string,
  info: VideoInfo,
  size: Size,
  pixelFormat: 'gray' | 'rgb24',
  filters: string[],
  onFrame: (index: number, frame: Buffer) => void,
  onStderrLine?: (line: string) => void,
): Promise<void> {
  const frameBytes = size.width * size.height * (pixelFormat === 'gray' ? 1 : 3);
  let buffered: Buffer = Buffer.alloc(0);
  let index = 0;
  const vf = [
    ...toneMap(info.dynamic_range),
    `scale=${size.width}:${size.height}`,
    `format=${pixelFormat}`,
    ...filters,
  ].join(',');
  await exec(
    'ffmpeg',
    [
      '-hide_banner',
      '-nostats',
      '-loglevel',
      onStderrLine ? 'info' : 'error',
      '-i',
      path,
      '-map',
      '0:v:0',
      '-an',
    ].concat(['-fps_mode', 'passthrough', '-vf', vf, '-f', 'rawvideo', '-pix_fmt', pixelFormat, '-']),
    {
      onStdout: (chunk) => {
        buffered = buffered.length ? Buffer.concat([buffered, chunk]) : chunk;
        while (buffered.length >= frameBytes) {
          onFrame(index++, buffered.subarray(0, frameBytes));
          buffered = buffered.subarray(frameBytes);
        }
      },
      onStderrLine,
    },
  );
}

/**
 * Scores every frame: sharpness and exposure on the small greyscale decode, and how far the view has
 * travelled since the first frame, from a thumbnail of it (motion.ts).
 */
export async function scoreFrames(
  path: string,
  info: VideoInfo,
  options: { longSide: number; onFrame?: (count: number) => void },
): Promise<ScoredFrame[]> {
  const size = scaledSize(info, options.longSide);
  const times: number[] = [];
  const scores: Omit<ScoredFrame, 'index' | 'time_s'>[] = [];
  const tracker = new MotionTracker();
  await decodeRaw(
    path,
    info,
    size,
    'gray',
    ['showinfo'],
    (_, frame) => {
      const grey = { data: frame, ...size };
      const { brightness, shadows } = exposure(grey);
      const thumb = thumbnail(grey);
      const travel = tracker.push(thumb);
      scores.push({ sharpness: laplacianVariance(grey), brightness, shadows, contrast: thumb.full.contrast, travel });
      options.onFrame?.(scores.length);
    },
    (line) => {
      const match = SHOWINFO.exec(line);
      if (match) times[Number(match[1])] = Number(match[2]);
    },
  );
  return scores.map((score, index) => ({ index, time_s: times[index] ?? index / info.fps, ...score }));
}

/**
 * Writes the frames at the given decode-order indices as JPEGs, `destination(i)` naming the
 * i-th chosen frame; answers the size they were written at.
 */
export async function extractFrames(
  path: string,
  info: VideoInfo,
  indices: readonly number[],
  options: { longSide: number; destination: (order: number) => string; onWritten?: (count: number) => void },
): Promise<Size> {
  const size = scaledSize(info, options.longSide);
  const order = new Map(indices.map((n, i) => [n, i]));
  const writes: Promise<unknown>[] = [];
  // A write that fails (a full disk) while ffmpeg still decodes is kept for after it, not left unhandled.
  let failure: Error | undefined;
  let written = 0;
  await decodeRaw(path, info, size, 'rgb24', [], (index, frame) => {
    const i = order.get(index);
    if (i === undefined) return;
    const copy = Buffer.from(frame); // not a view: the larger pipe buffer can then be freed
    writes.push(
      sharp(copy, { raw: { ...size, channels: 3 } })
        .jpeg({ quality: 95 })
        .toFile(options.destination(i))
        .then(
          () => {
            written++; // not inside the optional call below, which skips its arguments without a callback
            options.onWritten?.(written);
          },
          (error: Error) => {
            failure ??= error;
          },
        ),
    );
  });
  await Promise.all(writes);
  if (failure !== undefined) throw failure;
  if (written !== indices.length) throw new Error(`ffmpeg gave ${written} of the ${indices.length} chosen frames`);
  return size;
}

export async function ffmpegVersion(): Promise<string> {
  const { stdout } = await exec('ffmpeg', ['-version']);
  return /ffmpeg version (\S+)/.exec(stdout.toString())?.[1] ?? 'unknown';
}
