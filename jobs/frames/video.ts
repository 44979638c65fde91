/**
 * Two passes of ffmpeg over a video: a small greyscale decode of every frame to score its
 * sharpness, then a full-resolution extraction of only the chosen frames. ffmpeg applies the
 * rotation metadata itself (autorotate) in both, so frames come out upright.
 */
import { laplacianVariance } from '../image/sharpness.js';
import { exec } from '../runtime/exec.js';
import { displaySize, type VideoInfo } from './probe.js';
import type { ScoredFrame } from './windows.js';

const SHOWINFO = /\bn:\s*(\d+)\s+pts:\s*-?\d+\s+pts_time:\s*(-?[\d.]+)/;

/** Even dimensions no larger than `longSide`, keeping the displayed aspect ratio. */
export function scoringSize(info: VideoInfo, longSide: number): { width: number; height: number } {
  const shown = displaySize(info);
  const scale = Math.min(1, longSide / Math.max(shown.width, shown.height));
  const even = (v: number) => Math.max(2, Math.round((v * scale) / 2) * 2);
  return { width: even(shown.width), height: even(shown.height) };
}

export async function scoreFrames(
  path: string,
  info: VideoInfo,
  options: { longSide: number; onFrame?: (count: number) => void },
): Promise<ScoredFrame[]> {
  const { width, height } = scoringSize(info, options.longSide);
  const frameBytes = width * height;
  const times: number[] = [];
  const scores: number[] = [];
  let buffered = Buffer.alloc(0);
  await exec(
    'ffmpeg',
    [
      '-hide_banner',
      '-nostats',
      '-loglevel',
      'info',
      '-i',
      path,
      '-map',
      '0:v:0',
      '-fps_mode',
      'passthrough',
      '-an',
      '-vf',
      `scale=${width}:${height},format=gray,showinfo`,
      '-f',
      'rawvideo',
      '-pix_fmt',
      'gray',
      '-',
    ],
    {
      onStdout: (chunk) => {
        buffered = Buffer.concat([buffered, chunk]);
        while (buffered.length >= frameBytes) {
          const frame = buffered.subarray(0, frameBytes);
          buffered = buffered.subarray(frameBytes);
          scores.push(laplacianVariance({ data: frame, width, height }));
          options.onFrame?.(scores.length);
        }
      },
      onStderrLine: (line) => {
        const match = SHOWINFO.exec(line);
        if (match) times[Number(match[1])] = Number(match[2]);
      },
    },
  );
  return scores.map((sharpness, index) => ({ index, time_s: times[index] ?? index / info.fps, sharpness }));
}

/** Writes the chosen frames (decode order indices) as `NNNNN.png` in `dir`, in order. */
export async function extractFrames(path: string, indices: readonly number[], dir: string): Promise<void> {
  const select = indices.map((n) => `eq(n,${n})`).join('+');
  await exec('ffmpeg', [
    '-hide_banner',
    '-v',
    'error',
    '-i',
    path,
    '-map',
    '0:v:0',
    '-an',
    '-vf',
    `select='${select}'`,
    '-fps_mode',
    'passthrough',
    '-start_number',
    '0',
    `${dir}/%05d.png`,
  ]);
}

export async function ffmpegVersion(): Promise<string> {
  const { stdout } = await exec('ffmpeg', ['-version']);
  return /ffmpeg version (\S+)/.exec(stdout.toString())?.[1] ?? 'unknown';
}
