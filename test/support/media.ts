/** Generated media for stage tests, made with the real ffmpeg and sharp. */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { SHARED_DATA } from './data.js';

const run = promisify(execFile);

export const WATCH = join(SHARED_DATA, 'watch') + '/';
export const WATCH_VIDEO = `${WATCH}watch_orbit.mp4`;
export const WATCH_PHOTO = (n: number): string => `${WATCH}images/watch_${String(n).padStart(2, '0')}.jpg`;
export const SCEAUX_PHOTOS = join(SHARED_DATA, 'sceaux_castle', 'images') + '/';

export async function ffmpeg(...args: string[]): Promise<void> {
  await run('ffmpeg', ['-hide_banner', '-v', 'error', '-y', ...args]);
}

interface ClipOptions {
  width: number;
  height: number;
  seconds: number;
  fps: number;
}

/** A clip (x264) of an ffmpeg lavfi source ('testsrc2', 'color=c=gray') given its size and rate, then `filters`. */
async function lavfiClip(path: string, source: string, options: ClipOptions, filters: string[] = []) {
  const sizeAndRate = `size=${options.width}x${options.height}:rate=${options.fps}`;
  await ffmpeg(
    '-f',
    'lavfi',
    '-i',
    `${source}${source.includes('=') ? ':' : '='}${sizeAndRate}`,
    ...filters,
    '-t',
    String(options.seconds),
    '-c:v',
    'libx264',
    '-pix_fmt',
    'yuv420p',
    path,
  );
}

/** A synthetic test-pattern clip (x264) of the given size, length and rate. */
export async function testClip(path: string, options: ClipOptions) {
  await lavfiClip(path, 'testsrc2', options);
}

/**
 * A clip of independent random noise frames (x264): real texture, but nothing in one frame matches
 * the next, so no two frames can be registered together.
 */
export async function noiseClip(path: string, options: ClipOptions) {
  await lavfiClip(path, 'color=c=gray', options, ['-vf', 'noise=alls=100:allf=t+u']);
}

/**
 * A camera pan over a real photo: a `width`×`height` window sliding across it, left to right
 * (x264), so the frames stage sees real texture and real motion. The photo is scaled to 4 window
 * heights, so a 4:3 photo gives a pan of about 4 window widths; `speed`: window widths per second.
 */
export async function panClip(
  path: string,
  photo: string,
  options: { width: number; height: number; seconds: number; fps: number; speed: number },
) {
  const { width, height, seconds, fps, speed } = options;
  await ffmpeg(
    '-loop',
    '1',
    '-framerate',
    String(fps),
    '-i',
    photo,
    '-vf',
    `scale=-2:${height * 4},crop=${width}:${height}:'min(iw-${width},t*${speed * width})':${height * 1.5},format=yuv420p`,
    '-t',
    String(seconds),
    '-c:v',
    'libx264',
    '-crf',
    '18',
    path,
  );
}

/**
 * `seconds` of `video` from `from` (re-encoded, so the cut is frame-exact); `blur`: a span, in
 * the part's own seconds, blurred far past what SIFT can use, as a hand shaking in the dark gives.
 */
export async function clipPart(
  path: string,
  video: string,
  options: { from: number; seconds: number; blur?: { from: number; to: number } },
) {
  const { blur } = options;
  await ffmpeg(
    ...['-ss', String(options.from), '-t', String(options.seconds), '-i', video],
    ...(blur ? ['-vf', `boxblur=60:3:enable='between(t,${blur.from},${blur.to})'`] : []),
    ...['-c:v', 'libx264', '-crf', '18', '-pix_fmt', 'yuv420p', path],
  );
}

/**
 * `first` then, with a hard cut, `second`, scaled and cropped to `first`'s frame size at `fps`:
 * a clip whose second half shares nothing with its first.
 */
export async function cutClip(
  path: string,
  first: { video: string; from: number; seconds: number },
  second: { video: string; seconds: number },
  frame: { width: number; height: number; fps: number },
) {
  const { width, height, fps } = frame;
  await ffmpeg(
    ...['-ss', String(first.from), '-t', String(first.seconds), '-i', first.video],
    ...['-t', String(second.seconds), '-i', second.video],
    '-filter_complex',
    `[0:v]fps=${fps},setsar=1[a];[1:v]scale=${width}:-2,crop=${width}:${height},fps=${fps},setsar=1[b];[a][b]concat=n=2:v=1[v]`,
    ...['-map', '[v]', '-c:v', 'libx264', '-crf', '18', '-pix_fmt', 'yuv420p', path],
  );
}
