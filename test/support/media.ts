/** Generated media for stage tests, made with the real ffmpeg and sharp. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const WATCH = new URL('../../../../shared/data/watch/', import.meta.url).pathname;
export const WATCH_VIDEO = `${WATCH}watch_orbit.mp4`;
export const WATCH_PHOTO = (n: number): string => `${WATCH}images/watch_${String(n).padStart(2, '0')}.jpg`;
export const SCEAUX_PHOTOS = new URL('../../../../shared/data/sceaux_castle/images/', import.meta.url).pathname;

export async function ffmpeg(...args: string[]): Promise<void> {
  await run('ffmpeg', ['-hide_banner', '-v', 'error', '-y', ...args]);
}

/** A synthetic test-pattern clip (x264) of the given size, length and rate. */
export async function testClip(path: string, options: { width: number; height: number; seconds: number; fps: number }) {
  await ffmpeg(
    '-f',
    'lavfi',
    '-i',
    `testsrc2=size=${options.width}x${options.height}:rate=${options.fps}`,
    '-t',
    String(options.seconds),
    '-c:v',
    'libx264',
    '-pix_fmt',
    'yuv420p',
    path,
  );
}
