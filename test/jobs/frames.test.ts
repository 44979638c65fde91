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
import { chooseFrames, type ScoredFrame } from '../../jobs/frames/windows.js';
import { ffmpeg, panClip, SCEAUX_PHOTOS, testClip, WATCH_PHOTO, WATCH_VIDEO } from '../support/media.js';
import { progressOf, readManifest, runStageProcess } from '../support/stage-process.js';

let work: string;
before(async () => {
  work = await mkdtemp(join(tmpdir(), 'frames-test-'));
});
after(() => rm(work, { recursive: true, force: true }));

/** Runs the frames stage on `input` into `work/name/`, which must succeed, and reads its manifest. */
async function framesOk(name: string, input: string, params: Record<string, unknown> = {}) {
  const prefix = join(work, name) + '/';
  const run = await runStageProcess('frames', { input, prefix, params });
  assert.equal(run.code, 0, run.stderr);
  const manifest = await readManifest(join(prefix, 'frames', 'manifest.json'));
  return { run, prefix, manifest, metrics: manifest.metrics as unknown as FramesMetrics };
}

describe('frames from a video', () => {
  it('takes every frame of the watch orbit, whose 4 fps photos lie further apart than max_step, upright and uncropped', async () => {
    const { run, prefix, manifest, metrics } = await framesOk('watch', WATCH_VIDEO, { target_frames: 11 });
    assert.equal(metrics.source, 'video');
    assert.equal(metrics.video?.frames_decoded, 44);
    assert.equal(metrics.video?.rotation, 0);
    // Thinning to the 11 asked for would leave half a view or more between frames: overlap wins.
    assert.ok(metrics.count > 30, `${metrics.count} frames`);
    assert.equal(metrics.video?.limited_by, 'overlap');
    // Why each frame: its time, sharpness and estimated overlap with the one before.
    for (const frame of metrics.frames) {
      assert.equal(typeof frame.time_s, 'number');
      assert.ok((frame.sharpness ?? 0) > 0);
      assert.ok((frame.overlap_previous ?? -1) >= 0 && (frame.overlap_previous ?? 2) <= 1);
    }
    for (const frame of metrics.frames.slice(0, 3)) {
      const meta = await sharp(join(prefix, 'frames', frame.file)).metadata();
      assert.deepEqual([meta.format, meta.width, meta.height], ['jpeg', 720, 960]);
    }
    // Outputs are recorded with checksums (the frames and the per-frame table), the input with its sha256.
    assert.equal(manifest.outputs.length, metrics.count + 1);
    const table = JSON.parse(await readFile(join(prefix, 'frames', 'video_frames.json'), 'utf8')) as {
      index: number[];
      travel: number[];
    };
    assert.equal(table.index.length, 44);
    assert.ok(table.travel.every((t, i) => i === 0 || t >= table.travel[i - 1]!));
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

  it('spreads frames along the camera travel: a pan that speeds up gets more frames where it is fast', async () => {
    // 6 s at 10 fps: the window moves a tenth of a view per second, then (from 3 s) seven tenths.
    const slow = join(work, 'pan-slow.mp4');
    const fast = join(work, 'pan-fast.mp4');
    const photo = join(SCEAUX_PHOTOS, '100_7100.JPG');
    await panClip(slow, photo, { width: 160, height: 120, seconds: 3, fps: 10, speed: 0.1 });
    await panClip(fast, photo, { width: 160, height: 120, seconds: 6, fps: 10, speed: 0.4 });
    // The fast clip's second half continues from where 1.2 views of travel took it.
    const clip = join(work, 'pan-mixed.mp4');
    await ffmpeg(
      '-i',
      slow,
      '-ss',
      '1.5',
      '-i',
      fast,
      '-filter_complex',
      '[0:v][1:v]concat=n=2:v=1',
      '-c:v',
      'libx264',
      clip,
    );
    const { metrics } = await framesOk('pan', clip, { target_frames: 12, max_step: 0.25 });
    const times = metrics.frames.map((f) => f.time_s ?? NaN);
    const early = times.filter((t) => t < 3).length;
    const late = times.filter((t) => t >= 3).length;
    assert.ok(late >= 2 * early, `${early} frames in the slow half, ${late} in the fast half`);
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
    const { metrics } = await framesOk('blur', video, { target_frames: 6, min_frames: 6 });
    assert.deepEqual(
      metrics.frames.map((f) => Number(f.source)),
      [0, 5, 10, 15, 16, 21],
    );
  });

  it('honours rotation metadata: a portrait phone clip gives portrait frames the right way up', async () => {
    // White left half, black right half (drifting a pixel a frame, so the clip has views to choose);
    // the rotation tag turns it a quarter counter-clockwise.
    const flat = join(work, 'flat.mp4');
    const turned = join(work, 'turned.mp4');
    await ffmpeg(
      '-f',
      'lavfi',
      '-i',
      'color=black:size=320x240:rate=10[b];color=white:size=160x240:rate=10[w];[b][w]overlay=x=t*10',
      '-t',
      '2',
      '-c:v',
      'libx264',
      '-pix_fmt',
      'yuv420p',
      flat,
    );
    await ffmpeg('-i', flat, '-c', 'copy', '-metadata:s:v:0', 'rotate=90', turned);
    // A flat, static picture: the static-shot and detail checks are beside the point here.
    const { prefix, metrics } = await framesOk('turned', turned, { target_frames: 4, min_travel: 0, min_detail: 0 });
    assert.equal(metrics.video?.rotation, 270);
    const { data, info } = await sharp(join(prefix, 'frames', metrics.frames[0]?.file ?? ''))
      .greyscale()
      .raw()
      .toBuffer({ resolveWithObject: true });
    assert.deepEqual([info.width, info.height], [240, 320]);
    assert.ok((data[10 * info.width + 120] ?? 255) < 30, 'top is the black half');
    assert.ok((data[(info.height - 10) * info.width + 120] ?? 0) > 225, 'bottom is the white half');
  });

  it('extracts at least the default 150 frames from a 20 s pan', async () => {
    const clip = join(work, 'many.mp4');
    await panClip(clip, join(SCEAUX_PHOTOS, '100_7101.JPG'), {
      width: 160,
      height: 120,
      seconds: 20,
      fps: 10,
      speed: 0.15,
    });
    const { manifest, metrics } = await framesOk('many', clip);
    assert.ok(metrics.count >= 150, `${metrics.count} frames`);
    assert.equal(manifest.outputs.length, metrics.count + 1);
  });

  it('caps the long side and keeps the aspect ratio', async () => {
    const clip = join(work, 'wide.mp4');
    await testClip(clip, { width: 1280, height: 720, seconds: 2, fps: 10 });
    const { metrics } = await framesOk('wide', clip, { target_frames: 3, max_long_side: 640, min_travel: 0 });
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

describe('choosing frames along the travel', () => {
  it('takes the most frames the clip holds when the target cannot be met, not the fewest', () => {
    // The dense orbit: 50 frames over 0.69 frame widths, the first 10 standing still.
    const frames: ScoredFrame[] = Array.from({ length: 50 }, (_, i) => ({
      index: i,
      time_s: i / 10,
      sharpness: 100,
      brightness: 120,
      shadows: 0,
      contrast: 40,
      travel: (0.69 * Math.max(0, i - 10)) / 39,
    }));
    const { choices } = chooseFrames(frames, { target: 48, maxStep: 0.2 });
    // 40 frames move; the still ones are one view.
    assert.ok(choices.length >= 40, `${choices.length} frames chosen`);
    const indices = choices.map((c) => c.frame.index);
    assert.deepEqual(
      indices,
      [...new Set(indices)].sort((a, b) => a - b),
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
      () =>
        clip('sound.mp4', (path) => ffmpeg('-f', 'lavfi', '-i', 'sine=frequency=440:duration=2', '-c:a', 'aac', path)),
      {},
      /no video stream \(only audio\)/,
    ],
    [
      'a clip too short for min_frames',
      () => clip('short.mp4', (path) => testClip(path, { width: 160, height: 120, seconds: 0.5, fps: 10 })),
      { min_frames: 10 },
      /too short: 5 frames decoded, at least 10 needed/,
    ],
    [
      'a clip longer than max_duration_s',
      () => clip('long.mp4', (path) => testClip(path, { width: 160, height: 120, seconds: 3, fps: 10 })),
      { max_duration_s: 2 },
      /lasts 3\.0 s; at most 2 s/,
    ],
    [
      'a file larger than max_input_bytes',
      () => Promise.resolve(WATCH_VIDEO),
      { max_input_bytes: 100_000 },
      /the video is \d+ bytes; at most 100000 are accepted/,
    ],
    [
      'a picture larger than max_video_pixels, refused from the probe',
      () => clip('big.mp4', (path) => testClip(path, { width: 320, height: 240, seconds: 1, fps: 10 })),
      { max_video_pixels: 50_000 },
      /the video is 320×240 \(0\.1 megapixels\); at most 0\.1 megapixels are accepted \(max_video_pixels\)/,
    ],
    ['a missing input', () => Promise.resolve(join(work, 'absent.mp4')), {}, /input not found/],
    [
      'a static shot (a still photo for 4 s)',
      () =>
        clip('still.mp4', (path) =>
          ffmpeg(
            '-loop',
            '1',
            '-framerate',
            '10',
            '-i',
            WATCH_PHOTO(5),
            '-vf',
            'scale=240:320',
            '-t',
            '4',
            '-pix_fmt',
            'yuv420p',
            path,
          ),
        ),
      {},
      /the camera barely moves .*walk slowly around the subject/,
    ],
    [
      'a blank wall (flat colour with sensor noise, 4 s)',
      () =>
        clip('wall.mp4', (path) =>
          ffmpeg(
            '-f',
            'lavfi',
            '-i',
            'color=c=0xc8c0b0:size=320x240:rate=10,noise=alls=6:allf=t',
            '-t',
            '4',
            '-pix_fmt',
            'yuv420p',
            path,
          ),
        ),
      {},
      /almost no detail .*film a subject with texture/,
    ],
    [
      'a quick glance, then a still (5 views of 30 frames)',
      async () => {
        const glance = join(work, 'glance.mp4');
        await panClip(glance, join(SCEAUX_PHOTOS, '100_7104.JPG'), {
          width: 160,
          height: 120,
          seconds: 0.5,
          fps: 10,
          speed: 1.5,
        });
        return clip('glance-still.mp4', (path) =>
          ffmpeg('-i', glance, '-vf', 'tpad=stop_mode=clone:stop_duration=2.5', path),
        );
      },
      {},
      /gives only \d distinct views \(of 30 frames decoded.*at least 10 are needed: film longer, walking slowly/,
    ],
    [
      'a one-second clip',
      () =>
        clip('second.mp4', (path) =>
          panClip(path, join(SCEAUX_PHOTOS, '100_7102.JPG'), {
            width: 160,
            height: 120,
            seconds: 1,
            fps: 30,
            speed: 0.5,
          }),
        ),
      {},
      /lasts 1\.0 s; at least 2 s are needed/,
    ],
    [
      'a mostly black clip',
      async () => {
        const pan = join(work, 'bright-pan.mp4');
        await panClip(pan, join(SCEAUX_PHOTOS, '100_7103.JPG'), {
          width: 160,
          height: 120,
          seconds: 4,
          fps: 10,
          speed: 0.3,
        });
        const path = join(work, 'black.mp4');
        await ffmpeg('-i', pan, '-vf', 'lutyuv=y=val*0.05', '-pix_fmt', 'yuv420p', path);
        return path;
      },
      {},
      /100% of the clip is too dark to see .*more light/,
    ],
    [
      'a pan too fast for the frame ceiling',
      () =>
        clip('whip.mp4', (path) =>
          panClip(path, join(SCEAUX_PHOTOS, '100_7104.JPG'), {
            width: 160,
            height: 120,
            seconds: 3,
            fps: 10,
            speed: 1,
          }),
        ),
      { max_frames: 5, target_frames: 4 },
      /needs \d+ frames, more than max_frames 5: film a shorter clip or move more slowly/,
    ],
  ];

  /** `work/name`, once `make` has written a clip there. */
  async function clip(name: string, make: (path: string) => Promise<void>): Promise<string> {
    const path = join(work, name);
    await make(path);
    return path;
  }

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
    const { metrics } = await framesOk('sceaux', SCEAUX_PHOTOS, { max_long_side: 800, min_frames: 5 });
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
    const { metrics } = await framesOk('zipped', zip, { min_frames: 3 });
    assert.deepEqual(
      metrics.frames.map((f) => [f.source, f.width, f.height]),
      [
        ['p1.jpg', 100, 200],
        ['p2.jpg', 100, 200],
        ['p3.jpg', 100, 200],
      ],
    );
  });

  it('refuses a 100-megapixel photo from its header, before decoding it, naming it and the limit', async () => {
    const dir = join(work, 'huge-photo');
    await mkdir(dir);
    await sharp(WATCH_PHOTO(1)).resize(64, 48).jpeg().toFile(join(dir, 'a.jpg'));
    // b.jpg claims 10000×10000 in its frame header (SOF0) over 64×48 of data: decoding it would fail, so
    // the refusal shows it was judged by the header alone.
    const jpeg = await sharp(WATCH_PHOTO(2)).resize(64, 48).jpeg().toBuffer();
    const sof = jpeg.indexOf(Buffer.from([0xff, 0xc0]));
    jpeg.writeUInt16BE(10_000, sof + 5);
    jpeg.writeUInt16BE(10_000, sof + 7);
    await writeFile(join(dir, 'b.jpg'), jpeg);
    const prefix = join(work, 'huge-photo-out') + '/';
    const run = await runStageProcess('frames', { input: dir, prefix, params: { min_frames: 2 } });
    assert.equal(run.code, 2, run.stderr);
    assert.match(
      run.stderr,
      /the photo b\.jpg is 10000×10000 \(100\.0 megapixels\); at most 64\.0 megapixels are accepted \(max_image_pixels\)/,
    );
  });

  it('refuses zip bombs: one that declares its size before extracting, one that lies about it while extracting', async () => {
    const dir = join(work, 'bomb-src');
    await mkdir(dir);
    await writeFile(join(dir, 'bomb.jpg'), Buffer.alloc(20_000_000));
    const zip = join(work, 'bomb.zip');
    await promisify(execFile)('zip', ['-q', zip, 'bomb.jpg'], { cwd: dir });
    const honest = await runStageProcess('frames', {
      input: zip,
      prefix: join(work, 'bomb-honest') + '/',
      params: { min_frames: 2, max_input_bytes: 10_000_000 },
    });
    assert.equal(honest.code, 2, honest.stderr);
    assert.match(honest.stderr, /take 20000000 bytes uncompressed; at most 10000000 are accepted \(max_input_bytes\)/);
    // The same archive claiming 1000 bytes in its local and central headers.
    const lying = await readFile(zip);
    for (const [signature, offset] of [
      [0x04034b50, 22],
      [0x02014b50, 24],
    ] as const) {
      const at = lying.indexOf(Buffer.from(new Uint32Array([signature]).buffer));
      lying.writeUInt32LE(1000, at + offset);
    }
    await writeFile(join(work, 'liar.zip'), lying);
    const liar = await runStageProcess('frames', {
      input: join(work, 'liar.zip'),
      prefix: join(work, 'bomb-liar') + '/',
      params: { min_frames: 2, max_input_bytes: 10_000_000 },
    });
    assert.equal(liar.code, 2, liar.stderr);
    assert.match(liar.stderr, /the zip archive is damaged at bomb\.jpg/);
  });

  it("caps a request's limits by the job's ceilings (SPLATFLOW_MAX_*): a caller cannot raise them", async () => {
    const clip = join(work, 'ceiling.mp4');
    await testClip(clip, { width: 160, height: 120, seconds: 3, fps: 10 });
    const run = await runStageProcess('frames', {
      input: clip,
      prefix: join(work, 'ceiling') + '/',
      params: { max_duration_s: 3600 },
      env: { SPLATFLOW_MAX_DURATION_S: '2' },
    });
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, /lasts 3\.0 s; at most 2 s are accepted \(max_duration_s\)/);
  });

  for (const [what, names, cause] of [
    ['a zip with no photo', ['notes.txt'], /holds no photos \(JPEG, PNG, HEIC\/HEIF, WebP or TIFF\): send the photos/],
    ['a zip of 3 photos', ['a.jpg', 'b.jpg', 'c.jpg'], /holds 3 photos; at least 10 are needed: send 20 or more/],
  ] as const) {
    it(`refuses ${what}, saying what to send instead`, async () => {
      const dir = join(work, `${what}-src`);
      await mkdir(dir, { recursive: true });
      for (const name of names) {
        await (name.endsWith('.jpg') ? copyFile(WATCH_PHOTO(1), join(dir, name)) : writeFile(join(dir, name), 'x'));
      }
      const zip = join(work, `${names.length}.zip`);
      await promisify(execFile)('zip', ['-qr', zip, '.'], { cwd: dir });
      const prefix = join(work, `refused-${names.length}`) + '/';
      const run = await runStageProcess('frames', { input: zip, prefix, params: {} });
      assert.equal(run.code, 2);
      assert.match(run.stderr, cause);
      assert.doesNotMatch(run.stderr, /\/tmp\//, 'no internal path');
    });
  }

  it('refuses a photo it cannot decode by its name in the upload', async () => {
    const dir = join(work, 'broken-src');
    await mkdir(dir, { recursive: true });
    for (let i = 1; i <= 3; i++) await copyFile(WATCH_PHOTO(i), join(dir, `IMG_${i}.jpg`));
    await writeFile(join(dir, 'IMG_4.HEIC'), (await readFile(WATCH_PHOTO(4))).subarray(0, 3000));
    const zip = join(work, 'broken.zip');
    await promisify(execFile)('zip', ['-qr', zip, '.'], { cwd: dir });
    const run = await runStageProcess('frames', {
      input: zip,
      prefix: join(work, 'broken') + '/',
      params: { min_frames: 3 },
    });
    assert.equal(run.code, 2);
    assert.match(run.stderr, /cannot decode photo IMG_4\.HEIC: .*export it as JPEG and send it again/);
    assert.doesNotMatch(run.stderr, /\/tmp\//, 'no internal path');
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
