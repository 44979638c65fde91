import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { buildReport, ReportError, type Report } from '../../jobs/export/report.js';
import { ExportInputError, runExport, type ExportInput, type ExportResult } from '../../jobs/export/run-export.js';
import { exportParamsSchema, type TrainRenders } from '../../jobs/export/schema.js';
import type { ViewerData } from '../../jobs/export/viewer-data.js';
import { SPLAT_BYTES } from '../../jobs/export/splat-file.js';
import { gaussianPly, scene } from '../support/gaussian-ply.js';
import { stageParams } from '../support/params.js';

const CLI = join(dirname(fileURLToPath(import.meta.resolve('@playcanvas/splat-transform'))), '..', 'bin', 'cli.mjs');
const manifest = (stage: string, start: string, seconds: number, extra: object = {}) => ({
  schema_version: 1,
  stage,
  request_id: 'req-1',
  started_at: start,
  finished_at: new Date(Date.parse(start) + seconds * 1000).toISOString(),
  duration_s: seconds,
  inputs: [],
  outputs: [],
  parameters: {},
  tools: {},
  timings: {},
  metrics: {},
  ...extra,
});

let root: string;
let ply: string;
const splats = scene();
/** The train stage's renders (jobs/train/renders.py) as files beside the ply: left half red, right half blue. */
const renders: TrainRenders = {
  thumbnail: { file: 'thumbnail.png', camera: 'b.jpg', width: 512, height: 384 },
  heldout: [{ file: 'heldout/a.png', camera: 'a.jpg', psnr: 21.5, ssim: 0.71 }],
};
const halves = (width: number, height: number) =>
  sharp({ create: { width, height, channels: 3, background: [255, 0, 0] } }).composite([
    {
      input: { create: { width: width / 2, height, channels: 3, background: [0, 0, 255] } },
      left: width / 2,
      top: 0,
    },
  ]);
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'splatflow-export-'));
  ply = join(root, 'point_cloud.ply');
  await writeFile(ply, gaussianPly(splats));
  await halves(512, 384).png().toFile(join(root, 'thumbnail.png'));
  await mkdir(join(root, 'heldout'));
  await halves(128, 72)
    .png()
    .toFile(join(root, 'heldout', 'a.png'));
});
const exportInput = (fields: Partial<ExportInput> & Pick<ExportInput, 'outDir'>): ExportInput => ({
  requestId: 'r',
  plyPath: ply,
  renders,
  rendersDir: root,
  manifests: {},
  params: stageParams(exportParamsSchema),
  ...fields,
});
after(async () => {
  if (!process.env['KEEP']) await rm(root, { recursive: true, force: true });
});

/** Where red and blue splats show along one row of an image: [first, last] x of each. */
async function colourSpans(path: string, y: number) {
  const { data, info } = await sharp(path).raw().toBuffer({ resolveWithObject: true });
  const spans = { red: [Infinity, -Infinity], blue: [Infinity, -Infinity] };
  for (let x = 0; x < info.width; x++) {
    const at = (y * info.width + x) * info.channels;
    const [r, g, b] = [data[at]!, data[at + 1]!, data[at + 2]!];
    const hit = r > 150 && g < 80 && b < 80 ? spans.red : b > 150 && r < 80 && g < 80 ? spans.blue : undefined;
    if (hit) [hit[0], hit[1]] = [Math.min(hit[0]!, x), Math.max(hit[1]!, x)];
  }
  return spans;
}

async function pixel(path: string | Buffer, x: number, y: number): Promise<[number, number, number]> {
  const { data, info } = await sharp(path).raw().toBuffer({ resolveWithObject: true });
  const at = (y * info.width + x) * info.channels;
  return [data[at]!, data[at + 1]!, data[at + 2]!];
}

describe('export of a trained splat with no cameras', () => {
  const outDir = () => join(root, 'plain');
  let result: ExportResult;
  let report: Report;
  const progress: number[] = [];

  before(async () => {
    await mkdir(outDir());
    const manifests = {
      frames: manifest('frames', '2026-01-01T00:00:00.000Z', 10, { tools: { ffmpeg: '5.1' } }),
      sfm: manifest('sfm', '2026-01-01T00:00:20.000Z', 60, {
        tools: { colmap: '3.8' },
        metrics: { images_registered: 12 },
      }),
      train: manifest('train', '2026-01-01T00:01:30.000Z', 300, { metrics: { psnr: 24.5 } }),
      mesh: manifest('mesh', '2026-01-01T00:06:30.000Z', 20, {
        outputs: [
          { path: 'mesh.ply', size: 1234, sha256: 'x' },
          { path: 'mesh.glb', size: 2345, sha256: 'y' },
        ],
      }),
    };
    result = await runExport({
      ...exportInput({ outDir: outDir() }),
      requestId: 'req-1',
      manifests,
      progress: (f) => progress.push(f),
    });
    report = JSON.parse(await readFile(join(outDir(), 'report.json'), 'utf8')) as Report;
  });

  it('writes a v3 .spz that splat-transform reads back with every splat and all SH bands', async () => {
    const raw = gunzipSync(await readFile(join(outDir(), 'scene.spz')));
    assert.equal(raw.toString('latin1', 0, 4), 'NGSP');
    assert.equal(raw.readUInt32LE(4), 3);
    assert.equal(raw.readUInt32LE(8), splats.length);
    const info = JSON.parse(
      execFileSync(process.execPath, [CLI, '-q', join(outDir(), 'scene.spz'), '--info', 'json', 'null'], {
        encoding: 'utf8',
      }),
    ) as { numGaussians: number; shBands: number };
    assert.deepEqual([info.numGaussians, info.shBands], [splats.length, 3]);
    assert.ok(
      result.metrics.spz_bytes < result.metrics.ply_bytes / 5,
      `${result.metrics.spz_bytes} vs ${result.metrics.ply_bytes}`,
    );
  });

  it('writes a .splat that another reader decodes to the same positions, colours and opacities', async () => {
    const file = join(outDir(), 'scene.splat');
    assert.equal((await stat(file)).size, splats.length * SPLAT_BYTES);
    type Stats = { numGaussians: number; stats: { columns: string[]; data: { mean: number[] } }[] };
    const read = (path: string) =>
      JSON.parse(
        execFileSync(process.execPath, [CLI, '-q', path, '--stats', 'json', 'null'], { encoding: 'utf8' }),
      ) as Stats;
    const mine = read(file);
    const reference = read(ply);
    assert.equal(mine.numGaussians, splats.length);
    const mean = (s: Stats, name: string) => s.stats[0]!.data.mean[s.stats[0]!.columns.indexOf(name)]!;
    for (const name of ['x', 'y', 'z']) assert.ok(Math.abs(mean(mine, name) - mean(reference, name)) < 1e-4, name);
    // 8-bit colour and opacity: within one step.
    for (const name of ['f_dc_0', 'f_dc_2', 'opacity'])
      assert.ok(Math.abs(mean(mine, name) - mean(reference, name)) < 0.01, name);
  });

  it('writes a SOG that splat-transform reads back with every splat, smaller than the .spz', async () => {
    const sog = join(outDir(), 'scene.sog');
    assert.equal((await readFile(sog)).toString('latin1', 0, 2), 'PK', 'a zip bundle');
    const info = JSON.parse(
      execFileSync(process.execPath, [CLI, '-q', sog, '--info', 'json', 'null'], { encoding: 'utf8' }),
    ) as { numGaussians: number };
    assert.equal(info.numGaussians, splats.length);
    assert.equal(result.metrics.sog_bytes, (await stat(sog)).size);
    assert.ok(result.metrics.sog_bytes < result.metrics.ply_bytes / 5, `${result.metrics.sog_bytes}`);
  });

  it("makes the thumbnails from the train stage's render: resized, the small one a quarter", async () => {
    const thumb = join(outDir(), 'thumbnail.png');
    const { width, height } = await sharp(thumb).metadata();
    assert.deepEqual([width, height], [512, 384]);
    const { red, blue } = await colourSpans(thumb, 200);
    assert.deepEqual(
      [red, blue],
      [
        [0, 255],
        [256, 511],
      ],
    );
    const small = join(outDir(), 'thumbnail_small.png');
    assert.deepEqual(
      await sharp(small)
        .metadata()
        .then((m) => [m.width, m.height]),
      [128, 96],
    );
    assert.deepEqual(await pixel(small, 100, 50), [0, 0, 255]);
    assert.deepEqual(
      [result.metrics.thumbnail_camera, result.metrics.thumbnail_width, result.metrics.heldout_views],
      ['b.jpg', 512, 1],
    );
  });

  it('report.json lists every stage in pipeline order with its timings, metrics and tools', () => {
    assert.equal(report.request_id, 'req-1');
    assert.deepEqual(
      report.stages.map((s) => s.stage),
      ['frames', 'sfm', 'train', 'mesh', 'export'],
    );
    assert.deepEqual(report.skipped, ['filter', 'depth']);
    assert.equal(report.stages[2]?.metrics['psnr'], 24.5);
    assert.equal(report.stages[4]?.metrics['splats'], splats.length);
    assert.ok(report.stages_duration_s >= 390 && report.stages_duration_s < 420, String(report.stages_duration_s));
    assert.ok(report.wall_clock_s > 390, String(report.wall_clock_s)); // from 2026-01-01 to now
    assert.equal(report.tools['colmap'], '3.8');
    assert.match(report.tools['splat-transform'] ?? '', /^3\.\d+/);
    assert.equal(report.outputs['scene.spz']?.bytes, result.metrics.spz_bytes);
  });

  it("report.json gives every user-facing file's size, the renders and what the viewer reads", async () => {
    const sizes = Object.fromEntries(Object.entries(report.files).map(([path, file]) => [path, file.bytes]));
    const size = async (name: string) => (await stat(join(outDir(), name))).size;
    assert.deepEqual(sizes, {
      'train/point_cloud.ply': (await stat(ply)).size,
      'export/scene.spz': await size('scene.spz'),
      'export/scene.sog': await size('scene.sog'),
      'export/scene.splat': await size('scene.splat'),
      'export/thumbnail.png': await size('thumbnail.png'),
      'export/thumbnail_small.png': await size('thumbnail_small.png'),
      'mesh/mesh.ply': 1234,
      'mesh/mesh.glb': 2345,
    });
    assert.match(report.files['export/scene.sog']!.format, /^SOG/);
    assert.deepEqual(report.renders, {
      thumbnail: { ...renders.thumbnail, file: 'train/thumbnail.png' },
      heldout: [{ ...renders.heldout[0]!, file: 'train/heldout/a.png' }],
    });
    assert.deepEqual(report.viewer, {
      page: 'export/viewer/index.html',
      scene: 'export/scene.spz',
      mesh: 'mesh/mesh.glb',
    });
  });

  it('writes a viewer page holding the report and the held-out comparison, with no external script', async () => {
    const page = await readFile(join(outDir(), 'viewer', 'index.html'), 'utf8');
    const json = /<script type="application\/json" id="data">(.*?)<\/script>/s.exec(page)?.[1];
    const data = JSON.parse(json!) as ViewerData;
    assert.deepEqual(data.report, report);
    assert.deepEqual(data.cameras, [], 'no sfm model given');
    assert.equal(data.mesh, true);
    assert.equal(data.heldout.length, 1);
    assert.deepEqual([data.heldout[0]!.camera, data.heldout[0]!.psnr], ['a.jpg', 21.5]);
    const jpeg = Buffer.from(data.heldout[0]!.image.replace(/^data:image\/jpeg;base64,/, ''), 'base64');
    const [r, , b] = await pixel(jpeg, 100, 30);
    assert.ok(r < 40 && b > 215, `the comparison's right half is blue: ${r}, ${b}`);
    // Everything inline: the page opens from one signed URL and fetches only the request's own files.
    const external = [...page.matchAll(/<(?:script|link)\b[^>]*>/g)]
      .map(([tag]) => tag)
      .filter((tag) => /\s(?:src|href)=/.test(tag) && !/\s(?:src|href)="data:/.test(tag));
    assert.deepEqual(external, []);
    assert.equal(/\bimport\s*\(?\s*["']https?:/.exec(page)?.[0], undefined, 'no import from a URL');
  });

  it('reports progress from 0 to 1', () => {
    assert.equal(progress[0], 0);
    assert.equal(progress.at(-1), 1);
    assert.ok(progress.every((f, i) => i === 0 || f >= progress[i - 1]!));
  });
});

describe('export with the reconstruction cameras', () => {
  it('writes cameras.json with centres and focal lengths, the viewer starting at the thumbnail camera', async () => {
    const outDir = join(root, 'cameras');
    const sparse = join(root, 'sparse');
    await mkdir(outDir);
    await mkdir(sparse);
    // One PINHOLE camera 640×480 at (0, 0, -4) looking along +z at the origin (COLMAP: t = -R·C).
    await writeFile(join(sparse, 'cameras.txt'), '1 PINHOLE 640 480 500 500 320 240\n');
    await writeFile(
      join(sparse, 'images.txt'),
      '1 1 0 0 0 0 0 4 1 a.jpg\n\n2 0.9238795 0 0.3826834 0 0 0 4 1 b.jpg\n\n',
    );
    await writeFile(join(sparse, 'points3D.txt'), '');
    const result = await runExport(
      exportInput({ sparseDir: sparse, outDir, params: stageParams(exportParamsSchema, { thumbnail_size: 320 }) }),
    );
    assert.equal(result.metrics.cameras, 2);
    assert.deepEqual(
      await sharp(join(outDir, 'thumbnail.png'))
        .metadata()
        .then((m) => [m.width, m.height]),
      [320, 240],
    );
    const page = await readFile(join(outDir, 'viewer', 'index.html'), 'utf8');
    const data = JSON.parse(/id="data">(.*?)<\/script>/s.exec(page)![1]!) as ViewerData;
    assert.equal(data.start, 'b');
    assert.equal(data.mesh, false, 'no mesh stage finished');
    const cameras = JSON.parse(await readFile(join(outDir, 'cameras.json'), 'utf8')) as {
      img_name: string;
      position: number[];
      rotation: number[][];
      fx: number;
    }[];
    assert.deepEqual(
      cameras.map((c) => c.img_name),
      ['a', 'b'],
    );
    assert.deepEqual(
      cameras[0]?.position.map((v) => Math.round(v * 1e6) / 1e6 + 0),
      [0, 0, -4],
    );
    assert.deepEqual(cameras[0]?.rotation, [
      [1, 0, 0],
      [0, 1, 0],
      [0, 0, 1],
    ]);
    assert.equal(cameras[0]?.fx, 500);
    const b = cameras[1]!.position;
    assert.ok(Math.abs(Math.hypot(b[0]!, b[1]!, b[2]!) - 4) < 1e-5, 'camera b is 4 units from the origin');
    assert.ok(b[0]! > 2.5 && b[2]! < -2.5, `camera b at ${b.join(',')}`);
  });
});

describe('export refuses what it cannot read, saying why', () => {
  it('a PLY that is not a Gaussian splat (no opacity, scales or rotations)', async () => {
    const path = join(root, 'points.ply');
    await writeFile(path, gaussianPly(splats.slice(0, 5), ['x', 'y', 'z', 'f_dc_0', 'f_dc_1', 'f_dc_2']));
    await assert.rejects(
      runExport(exportInput({ plyPath: path, outDir: root })),
      (error: Error) =>
        error instanceof ExportInputError && /missing opacity, scale_0, scale_1, scale_2, rot_0/.test(error.message),
    );
  });

  it('a file that is not a PLY at all, and an empty splat', async () => {
    const junk = join(root, 'junk.ply');
    await writeFile(junk, 'hello');
    await assert.rejects(
      runExport(exportInput({ plyPath: junk, outDir: root })),
      /cannot read the trained splat .*junk\.ply: not a PLY file/,
    );
    const empty = join(root, 'empty.ply');
    await writeFile(empty, gaussianPly([]));
    await assert.rejects(runExport(exportInput({ plyPath: empty, outDir: root })), /the trained splat is empty/);
  });

  it('a malformed stage manifest is named in the error', () => {
    assert.throws(
      () =>
        buildReport({
          requestId: 'r',
          manifests: { sfm: { stage: 'sfm', duration_s: -1 } },
          outputs: {},
          files: {},
          renders,
          viewer: { page: '', scene: '', mesh: null },
        }),
      (error: Error) => error instanceof ReportError && /^the sfm stage's manifest is malformed: /.test(error.message),
    );
  });
});
