/**
 * The captures people really make, built here from the real watch photos and orbit clips the way
 * phones write them (ffmpeg/x265, heif-enc, EXIF tags), each through the frames stage: the frames
 * come out upright, about as bright and contrasted as the SDR source, and as many as the input
 * holds. Small (240×320, 12 frames) so that it stays cheap in CI. docs/capture.md has the matrix.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { parseProbe } from '../../jobs/frames/probe.js';
import type { FramesMetrics } from '../../jobs/frames/stage.js';
import { sharedData } from '../support/data.js';
import { ffmpeg, WATCH_PHOTO } from '../support/media.js';
import { readManifest, runStageProcess } from '../support/stage-process.js';

const run = promisify(execFile);
const COUNT = 12;
const [WIDTH, HEIGHT] = [240, 320];

let work: string;
/** The SDR clip every video variant is made from, and its frames as the stage writes them. */
let reference: string;
let referenceFrames: Grey[];

interface Grey {
  data: Buffer;
  width: number;
  height: number;
}

/** A frame as a small greyscale image, for comparing views and exposure. */
async function grey(path: string, size?: { width: number; height: number }): Promise<Grey> {
  const image = sharp(path).greyscale();
  if (size) image.resize(size.width, size.height, { fit: 'fill' });
  const { data, info } = await image.raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}

function stats({ data }: Grey): { mean: number; contrast: number } {
  let sum = 0;
  for (const v of data) sum += v;
  const mean = sum / data.length;
  let squares = 0;
  for (const v of data) squares += (v - mean) ** 2;
  return { mean, contrast: Math.sqrt(squares / data.length) };
}

/** Mean absolute grey difference between two images of the same size. */
function difference(a: Grey, b: Grey): number {
  assert.deepEqual([a.width, a.height], [b.width, b.height]);
  let sum = 0;
  for (let i = 0; i < a.data.length; i++) sum += Math.abs(a.data[i]! - b.data[i]!);
  return sum / a.data.length;
}

async function frames(name: string, input: string, params: Record<string, unknown> = {}) {
  const prefix = join(work, name) + '/';
  const result = await runStageProcess('frames', { input, prefix, params });
  assert.equal(result.code, 0, result.stderr);
  const metrics = (await readManifest(join(prefix, 'frames', 'manifest.json'))).metrics as unknown as FramesMetrics;
  const images = await Promise.all(metrics.frames.map((f) => grey(join(prefix, 'frames', f.file))));
  return { metrics, images };
}

/**
 * What a user checks: every frame the right way up (the same view as the source's frame, far
 * closer to it than to the source turned over), and the whole about as bright and contrasted.
 */
function assertLikeReference(images: Grey[], what: string) {
  assert.equal(images.length, referenceFrames.length, `${what}: frame count`);
  for (const [i, image] of images.entries()) {
    const source = referenceFrames[i]!;
    const turned = { ...source, data: Buffer.from(source.data).reverse() };
    const d = difference(image, source);
    assert.ok(d < 12 && d < difference(image, turned) / 2, `${what}: frame ${i} is not upright (${d.toFixed(1)})`);
  }
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const got = images.map(stats);
  const want = referenceFrames.map(stats);
  const [brightness, wantBrightness] = [mean(got.map((s) => s.mean)), mean(want.map((s) => s.mean))];
  const [contrast, wantContrast] = [mean(got.map((s) => s.contrast)), mean(want.map((s) => s.contrast))];
  // An untone-mapped HLG clip measured 98 against 148 grey levels, contrast 42 against 63.
  assert.ok(Math.abs(brightness - wantBrightness) < 10, `${what}: brightness ${brightness} against ${wantBrightness}`);
  assert.ok(Math.abs(contrast / wantContrast - 1) < 0.15, `${what}: contrast ${contrast} against ${wantContrast}`);
}

/** Re-encodes the reference clip with `args` (filters, codec, tags) into `name`. */
async function variant(name: string, ...args: string[]): Promise<string> {
  const path = join(work, name);
  await ffmpeg('-i', reference, ...args, path);
  return path;
}

const x265 = (transfer: string, primaries: string, matrix: string) => [
  '-c:v',
  'libx265',
  '-x265-params',
  `log-level=error:colorprim=${primaries}:transfer=${transfer}:colormatrix=${matrix}`,
  // As iPhones tag HEVC in .mov/.mp4.
  '-tag:v',
  'hvc1',
];

/** SDR BT.709 to HDR as a phone grades it: diffuse white at BT.2408's 203 nits, BT.2020, 10-bit. */
const toHdr = (transfer: string) =>
  `zscale=tin=bt709:pin=bt709:min=bt709:rin=tv:t=${transfer}:p=bt2020:m=bt2020nc:r=tv:npl=203,format=yuv420p10le`;

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'capture-matrix-'));
  const photos = join(work, 'photos');
  await mkdir(photos);
  for (let i = 0; i < COUNT; i++) {
    await sharp(WATCH_PHOTO(i + 1))
      .resize(WIDTH, HEIGHT)
      .png()
      .toFile(join(photos, `${String(i).padStart(2, '0')}.png`));
  }
  // The watch photos as a 4 fps clip: 3 s, a real orbit.
  reference = join(work, 'sdr.mp4');
  await ffmpeg(
    '-framerate',
    '4',
    '-i',
    join(photos, '%02d.png'),
    '-vf',
    'format=yuv420p',
    '-c:v',
    'libx264',
    '-crf',
    '16',
    reference,
  );
  referenceFrames = (await frames('sdr', reference)).images;
});
after(() => rm(work, { recursive: true, force: true }));

describe('phone video formats', () => {
  it('SDR H.264: every frame of the short clip, the reference for the rest', () => {
    assert.equal(referenceFrames.length, COUNT);
  });

  for (const [name, transfer] of [
    ['HLG', 'arib-std-b67'],
    ['PQ', 'smpte2084'],
  ] as const) {
    it(`${name} HDR (10-bit HEVC, BT.2020) is tone-mapped to look like the SDR source`, async () => {
      const clip = await variant(`${name}.mp4`, '-vf', toHdr(transfer), ...x265(transfer, 'bt2020', 'bt2020nc'));
      const { metrics, images } = await frames(name, clip);
      assert.equal(metrics.video?.dynamic_range, name.toLowerCase());
      assert.equal(metrics.video?.codec, 'hevc');
      assertLikeReference(images, name);
    });
  }

  it("Dolby Vision profile 8.4 (iPhone's default) is read as its HLG base layer, tags or not", () => {
    // ffprobe's JSON for such a stream, less what the decision does not read.
    const dolby = (color_transfer?: string) =>
      parseProbe({
        streams: [
          {
            codec_type: 'video',
            codec_name: 'hevc',
            width: 1920,
            height: 1080,
            avg_frame_rate: '30/1',
            duration: '3.0',
            ...(color_transfer ? { color_transfer } : {}),
            side_data_list: [{ dv_profile: 8, dv_bl_signal_compatibility_id: 4 }],
          },
        ],
      }).dynamic_range;
    assert.equal(dolby('arib-std-b67'), 'hlg');
    assert.equal(dolby(), 'hlg');
  });

  it('SDR 10-bit HEVC', async () => {
    const clip = await variant('sdr10.mp4', '-vf', 'format=yuv420p10le', ...x265('bt709', 'bt709', 'bt709'));
    const { metrics, images } = await frames('sdr10', clip);
    assert.equal(metrics.video?.dynamic_range, 'sdr');
    assertLikeReference(images, 'SDR 10-bit');
  });

  // Stored turned, with the tag that turns it back (as a phone held sideways or upside down writes it).
  for (const [rotate, turn] of [
    ['90', 'transpose=1'],
    ['180', 'hflip,vflip'],
    ['270', 'transpose=2'],
  ] as const) {
    it(`rotation tag ${rotate}°: frames upright`, async () => {
      const stored = await variant(`stored-${rotate}.mp4`, '-vf', turn, '-c:v', 'libx264', '-crf', '16');
      const tagged = join(work, `rotated-${rotate}.mp4`);
      await ffmpeg('-i', stored, '-c', 'copy', '-metadata:s:v:0', `rotate=${rotate}`, tagged);
      const { metrics, images } = await frames(`rotated-${rotate}`, tagged);
      assert.notEqual(metrics.video?.rotation, 0);
      assertLikeReference(images, `rotation ${rotate}`);
    });
  }

  it('an audio track is ignored', async () => {
    const clip = join(work, 'audio.mp4');
    await ffmpeg(
      '-i',
      reference,
      '-f',
      'lavfi',
      '-i',
      'sine=frequency=440:duration=3',
      '-c:v',
      'copy',
      '-c:a',
      'aac',
      clip,
    );
    assertLikeReference((await frames('audio', clip)).images, 'audio');
  });

  it('variable frame rate: every frame, at its own time', async () => {
    // The first half 4 fps, the second 2.5 fps, as phones vary the rate with the light.
    const clip = await variant(
      'vfr.mp4',
      '-vf',
      "setpts='if(lt(N,6),N*0.25,1.5+(N-6)*0.4)/TB'",
      '-fps_mode',
      'vfr',
      '-c:v',
      'libx264',
      '-crf',
      '16',
    );
    const { metrics, images } = await frames('vfr', clip);
    assertLikeReference(images, 'VFR');
    const times = metrics.frames.map((f) => f.time_s ?? NaN);
    assert.ok(Math.abs(times.at(-1)! - 3.5) < 0.05, `last frame at ${times.at(-1)} s`);
  });

  it('H.264 High 4:4:4', async () => {
    const clip = await variant(
      '444.mp4',
      '-pix_fmt',
      'yuv444p',
      '-c:v',
      'libx264',
      '-profile:v',
      'high444',
      '-crf',
      '16',
    );
    assertLikeReference((await frames('444', clip)).images, 'High 4:4:4');
  });

  it('a real H.264 High 4:4:4 orbit (stone_sign.mp4, portrait): every distinct view, upright size', async () => {
    const { metrics } = await frames('stone-sign', sharedData('orbit', 'stone_sign.mp4'), { max_long_side: 320 });
    assert.equal(metrics.video?.frames_decoded, 83);
    // About 4° of turn a frame, every one further than the step a preview keeps: all of them.
    assert.ok(metrics.count >= 80, `${metrics.count} frames`);
    assert.deepEqual([metrics.frames[0]?.width, metrics.frames[0]?.height], [180, 320]);
  });
});

describe('phone photo formats', () => {
  /** Zips `files` (written by `write` into a fresh folder) and runs the frames stage on the zip. */
  async function zipped(name: string, write: (dir: string) => Promise<void>) {
    const dir = join(work, `${name}-src`);
    await mkdir(dir);
    await write(dir);
    const zip = join(work, `${name}.zip`);
    await run('zip', ['-qr', zip, '.'], { cwd: dir });
    return frames(name, zip);
  }

  const photo = (i: number) => join(work, 'photos', `${String(i).padStart(2, '0')}.png`);

  it('HEIC (HEVC) photos are decoded', async () => {
    const { metrics, images } = await zipped('heic', async (dir) => {
      for (let i = 0; i < COUNT; i++) {
        await run('heif-enc', ['-q', '90', photo(i), '-o', join(dir, `IMG_${1000 + i}.HEIC`)]);
      }
    });
    assert.equal(metrics.frames[0]?.source, 'IMG_1000.HEIC');
    assertLikeReference(images, 'HEIC');
  });

  it('JPEG photos stored turned, with the EXIF orientation that turns them back', async () => {
    // Orientation 3: turn 180°; 6: 90° clockwise; 8: 90° counter-clockwise (the pixels are stored the other way).
    const turns = [
      [3, 180],
      [6, 270],
      [8, 90],
    ] as const;
    const { images } = await zipped('exif', async (dir) => {
      for (let i = 0; i < COUNT; i++) {
        const [orientation, angle] = turns[i % 3]!;
        await sharp(photo(i))
          .rotate(angle)
          .withMetadata({ orientation })
          .jpeg({ quality: 95 })
          .toFile(join(dir, `IMG_${1000 + i}.JPG`));
      }
    });
    assertLikeReference(images, 'EXIF orientation');
  });

  it('portrait and landscape photos mixed: each keeps its own shape', async () => {
    const { metrics } = await zipped('mixed', async (dir) => {
      for (let i = 0; i < COUNT; i++) {
        // Every other photo held sideways: a landscape crop of the same view.
        const image = sharp(photo(i));
        if (i % 2) image.resize(WIDTH, (WIDTH * 3) / 4, { fit: 'cover' });
        await image.jpeg().toFile(join(dir, `IMG_${1000 + i}.JPG`));
      }
    });
    assert.deepEqual(
      metrics.frames.map((f) => [f.width, f.height]),
      Array.from({ length: COUNT }, (_, i) => (i % 2 ? [WIDTH, (WIDTH * 3) / 4] : [WIDTH, HEIGHT])),
    );
  });
});
