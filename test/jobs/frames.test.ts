/**
 * The frames stage through its real entry point, on the real watch video and photos and on
 * clips generated here with ffmpeg.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import type { FramesMetrics } from '../../jobs/frames/stage.js';
import { ffmpeg, SCEAUX_PHOTOS, testClip, WATCH_PHOTO, WATCH_VIDEO } from '../support/media.js';
import { progressOf, readManifest, runStageProcess } from '../support/stage-process.js';

let work: string;
before(async () => {
  work = await mkdtemp(join(tmpdir(), 'frames-test-'));
});
after(() => rm(work, { recursive: true, force: true }));

async function framesOf(prefix: string) {
  const manifest = await readManifest(join(prefix, 'frames', 'manifest.json'));
  return { manifest, metrics: manifest.metrics as unknown as FramesMetrics };
}

describe('frames from a video', () => {
  it('takes target_frames frames from the watch video, one per equal time window, upright and uncropped', async () => {
    const prefix = join(work, 'watch') + '/';
    const run = await runStageProcess('frames', { input: WATCH_VIDEO, prefix, params: { target_frames: 11 } });
    assert.equal(run.code, 0, run.stderr);
    const { manifest, metrics } = await framesOf(prefix);
    assert.equal(metrics.source, 'video');
    assert.equal(metrics.count, 11);
    assert.equal(metrics.video?.frames_decoded, 44);
    assert.equal(metrics.video?.rotation, 0);
    // 44 frames at 4 fps over 11 s in 11 windows: exactly one chosen frame per second.
    const seconds = metrics.frames.map((f) => Math.floor((f.time_s ?? NaN) / (10.75 / 11)));
    assert.deepEqual(seconds, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    for (const frame of metrics.frames) {
      const meta = await sharp(join(prefix, 'frames', frame.file)).metadata();
      assert.deepEqual([meta.format, meta.width, meta.height], ['jpeg', 720, 960]);
    }
    // Outputs are recorded with checksums, the input with its sha256, and the manifest is last.
    assert.equal(manifest.outputs.length, 11);
    assert.match(manifest.inputs[0]?.sha256 ?? '', /^[0-9a-f]{64}$/);
    assert.ok(manifest.tools.ffmpeg);
    const progress = progressOf(run.stdout);
    assert.equal(progress.at(-1), 1);
    assert.deepEqual(
      progress,
      [...progress].sort((a, b) => a - b),
      'progress never goes back',
    );
  });

  it('picks the sharpest frame of each window, not every k-th frame', async () => {
    // 6 one-second groups of 4 frames (4 fps); in group k only frame k % 4 is sharp.
    const dir = join(work, 'blur-src');
    await mkdir(dir, { recursive: true });
    for (let group = 0; group < 6; group++) {
      const photo = sharp(WATCH_PHOTO(group * 7 + 1)).resize(360, 480);
      const sharpFrame = await photo.clone().png().toBuffer();
      const blurred = await photo.clone().blur(4).png().toBuffer();
      for (let i = 0; i < 4; i++) {
        await writeFile(
          join(dir, `${String(group * 4 + i).padStart(2, '0')}.png`),
          i === group % 4 ? sharpFrame : blurred,
        );
      }
    }
    const video = join(work, 'blur.mp4');
    await ffmpeg(
      '-framerate',
      '4',
      '-i',
      join(dir, '%02d.png'),
      '-c:v',
      'libx264',
      '-crf',
      '16',
      '-pix_fmt',
      'yuv420p',
      video,
    );
    const prefix = join(work, 'blur') + '/';
    const run = await runStageProcess('frames', { input: video, prefix, params: { target_frames: 6, min_frames: 6 } });
    assert.equal(run.code, 0, run.stderr);
    const { metrics } = await framesOf(prefix);
    assert.deepEqual(
      metrics.frames.map((f) => Number(f.source)),
      [0, 5, 10, 15, 16, 21],
    );
  });

  it('honours rotation metadata: a portrait phone clip gives portrait frames the right way up', async () => {
    // White left half, black right half; the rotation tag turns it a quarter counter-clockwise.
    const flat = join(work, 'flat.mp4');
    const turned = join(work, 'turned.mp4');
    await ffmpeg(
      '-f',
      'lavfi',
      '-i',
      'color=white:size=160x240:rate=10,pad=320:240:0:0:black',
      '-t',
      '2',
      '-c:v',
      'libx264',
      '-pix_fmt',
      'yuv420p',
      flat,
    );
    await ffmpeg('-i', flat, '-c', 'copy', '-metadata:s:v:0', 'rotate=90', turned);
    const prefix = join(work, 'turned') + '/';
    const run = await runStageProcess('frames', { input: turned, prefix, params: { target_frames: 4 } });
    assert.equal(run.code, 0, run.stderr);
    const { metrics } = await framesOf(prefix);
    assert.equal(metrics.video?.rotation, 270);
    const { data, info } = await sharp(join(prefix, 'frames', metrics.frames[0]?.file ?? ''))
      .greyscale()
      .raw()
      .toBuffer({ resolveWithObject: true });
    assert.deepEqual([info.width, info.height], [240, 320]);
    assert.ok((data[10 * info.width + 120] ?? 255) < 30, 'top is the black half');
    assert.ok((data[(info.height - 10) * info.width + 120] ?? 0) > 225, 'bottom is the white half');
  });

  it('extracts the default 150 frames from a 200-frame clip', async () => {
    const clip = join(work, 'many.mp4');
    await testClip(clip, { width: 160, height: 120, seconds: 20, fps: 10 });
    const prefix = join(work, 'many') + '/';
    const run = await runStageProcess('frames', { input: clip, prefix });
    assert.equal(run.code, 0, run.stderr);
    const { manifest, metrics } = await framesOf(prefix);
    assert.equal(metrics.count, 150);
    assert.equal(manifest.outputs.length, 150);
  });

  it('caps the long side and keeps the aspect ratio', async () => {
    const clip = join(work, 'wide.mp4');
    await testClip(clip, { width: 1280, height: 720, seconds: 2, fps: 10 });
    const prefix = join(work, 'wide') + '/';
    const run = await runStageProcess('frames', {
      input: clip,
      prefix,
      params: { target_frames: 3, max_long_side: 640 },
    });
    assert.equal(run.code, 0, run.stderr);
    const { metrics } = await framesOf(prefix);
    assert.deepEqual(
      metrics.frames.map((f) => [f.width, f.height]),
      [
        [640, 360],
        [640, 360],
        [640, 360],
      ],
    );
  });
});

describe('frames refuses bad videos with a one-line cause and no manifest', () => {
  const cases: [string, () => Promise<string>, Record<string, unknown>, RegExp][] = [
    ['a zero-byte file', () => write('empty.mp4', ''), {}, /not a readable video/],
    ['a text file named .mp4', () => write('notes.mp4', 'this is not a video\n'), {}, /not a readable video/],
    [
      'a truncated (corrupt) video',
      async () => write('cut.mp4', (await readFile(WATCH_VIDEO)).subarray(0, 4000)),
      {},
      /not a readable video|cannot be decoded/,
    ],
    [
      'an audio-only file',
      async () => {
        const path = join(work, 'sound.mp4');
        await ffmpeg('-f', 'lavfi', '-i', 'sine=frequency=440:duration=2', '-c:a', 'aac', path);
        return path;
      },
      {},
      /no video stream \(only audio\)/,
    ],
    [
      'a clip too short for min_frames',
      async () => {
        const path = join(work, 'short.mp4');
        await testClip(path, { width: 160, height: 120, seconds: 0.5, fps: 10 });
        return path;
      },
      { min_frames: 10 },
      /too short: 5 frames decoded, at least 10 needed/,
    ],
    [
      'a clip longer than max_duration_s',
      async () => {
        const path = join(work, 'long.mp4');
        await testClip(path, { width: 160, height: 120, seconds: 3, fps: 10 });
        return path;
      },
      { max_duration_s: 2 },
      /lasts 3\.0 s; at most 2 s/,
    ],
    [
      'a file larger than max_input_bytes',
      () => Promise.resolve(WATCH_VIDEO),
      { max_input_bytes: 100_000 },
      /the video is \d+ bytes; at most 100000 are accepted/,
    ],
    ['a missing input', () => Promise.resolve(join(work, 'absent.mp4')), {}, /input not found/],
  ];

  async function write(name: string, data: string | Buffer): Promise<string> {
    const path = join(work, name);
    await writeFile(path, data);
    return path;
  }

  for (const [name, make, params, cause] of cases) {
    it(name, async () => {
      const prefix = join(work, `bad-${name.replace(/\W+/g, '-')}`) + '/';
      const run = await runStageProcess('frames', { input: await make(), prefix, params });
      assert.equal(run.code, 2, run.stderr);
      assert.equal(run.stderr.trim().split('\n').length, 1, run.stderr);
      assert.match(run.stderr, /^frames failed: /);
      assert.match(run.stderr, cause);
      assert.equal(existsSync(join(prefix, 'frames', 'manifest.json')), false);
    });
  }
});

describe('frames from photos', () => {
  it('normalises a folder of photos: all kept in name order, long side capped', async () => {
    const prefix = join(work, 'sceaux') + '/';
    const run = await runStageProcess('frames', {
      input: SCEAUX_PHOTOS,
      prefix,
      params: { max_long_side: 800, min_frames: 5 },
    });
    assert.equal(run.code, 0, run.stderr);
    const { metrics } = await framesOf(prefix);
    assert.equal(metrics.source, 'images');
    assert.equal(metrics.count, 11);
    assert.equal(metrics.frames[0]?.source, '100_7100.JPG');
    assert.deepEqual([metrics.frames[0]?.width, metrics.frames[0]?.height], [800, 601]);
  });

  it('takes a zip, applies EXIF orientation, and ignores what is not a photo', async () => {
    const dir = join(work, 'zip-src');
    await mkdir(join(dir, '__MACOSX'), { recursive: true });
    for (let i = 1; i <= 3; i++) {
      // Stored landscape 200×100 with orientation 6: shown portrait, 100×200.
      await sharp(WATCH_PHOTO(i))
        .resize(200, 100, { fit: 'fill' })
        .withMetadata({ orientation: 6 })
        .jpeg()
        .toFile(join(dir, `p${i}.jpg`));
    }
    await copyFile(join(dir, 'p1.jpg'), join(dir, '__MACOSX', '._p1.jpg'));
    await writeFile(join(dir, 'readme.txt'), 'not a photo');
    const zip = join(work, 'photos.zip');
    await promisify(execFile)('zip', ['-qr', zip, '.'], { cwd: dir });
    const prefix = join(work, 'zipped') + '/';
    const run = await runStageProcess('frames', { input: zip, prefix, params: { min_frames: 3 } });
    assert.equal(run.code, 0, run.stderr);
    const { metrics } = await framesOf(prefix);
    assert.deepEqual(
      metrics.frames.map((f) => [f.source, f.width, f.height]),
      [
        ['p1.jpg', 100, 200],
        ['p2.jpg', 100, 200],
        ['p3.jpg', 100, 200],
      ],
    );
  });

  it('refuses a folder with fewer photos than min_frames', async () => {
    const prefix = join(work, 'few') + '/';
    const run = await runStageProcess('frames', { input: SCEAUX_PHOTOS, prefix, params: { min_frames: 20 } });
    assert.equal(run.code, 2);
    assert.match(run.stderr, /holds 11 photos; at least 20 are needed/);
  });
});

describe('frames reads only from the input locations, where they are set (the cloud jobs)', () => {
  const env = { SPLATFLOW_INPUT_LOCATIONS: 'gs://splatflow-uploads/uploads/' };
  for (const input of [
    '/etc/passwd',
    'file:///etc/passwd',
    WATCH_VIDEO,
    'gs://splatflow-work/requests/other/frames/',
  ]) {
    it(`refuses ${input} before touching it, with a one-line cause`, async () => {
      const prefix = join(work, `located-${input.replace(/\W+/g, '-')}`) + '/';
      const run = await runStageProcess('frames', { input, prefix, env });
      assert.equal(run.code, 2, run.stderr);
      assert.equal(run.stderr.trim().split('\n').length, 1, run.stderr);
      assert.match(run.stderr, /not under an allowed input location \(gs:\/\/splatflow-uploads\/uploads\/\)/);
      // Only the error record: no frames, no manifest.
      assert.deepEqual(await readdir(join(prefix, 'frames')), ['error.json']);
    });
  }

  it('refuses a malformed list as a configuration error', async () => {
    const prefix = join(work, 'located-bad-list') + '/';
    const run = await runStageProcess('frames', {
      input: WATCH_VIDEO,
      prefix,
      env: { SPLATFLOW_INPUT_LOCATIONS: '/etc/' },
    });
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, /SPLATFLOW_INPUT_LOCATIONS/);
  });
});
