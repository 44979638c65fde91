/**
 * `npm run reconstruct` end to end, as a user runs it, on real data: the local stack, the trigger and
 * status functions, the real workflows/reconstruct.yaml and every real stage job (ffmpeg/sharp, COLMAP,
 * the CPU rasterizer, TSDF, splat-transform). Sized for CI with few training steps: the sample video
 * (150 steps) about 40 s here, the 11 Sceaux Castle photos as the .zip a user uploads (20 steps) about
 * 30 s, the failure case about 6 s.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtemp, open, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { checkErrorRecord } from '../../jobs/runtime/error-record.js';
import { pythonInterpreter } from '../../local/python.js';
import { sharedData } from '../support/data.js';
import { noiseClip } from '../support/media.js';

const COMMAND = fileURLToPath(new URL('../../local/reconstruct.js', import.meta.url));
const PYTHON = pythonInterpreter(fileURLToPath(new URL('../../..', import.meta.url)));

let work: string;
before(async () => {
  work = await mkdtemp(join(tmpdir(), 'splatflow-e2e-'));
});
after(async () => {
  await rm(work, { recursive: true, force: true });
});

/** Runs the command as `npm run reconstruct -- …` does; answers its exit code and output. */
function reconstruct(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [COMMAND, ...args], {
      env: { ...process.env, METADATA_SERVER_DETECTION: 'none', SPLATFLOW_DEPTH_MODEL_URI: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/** The path the command printed after `label:`. */
function printed(stdout: string, label: string): string {
  const line = stdout.split('\n').find((l) => l.trim().startsWith(`${label}:`));
  assert.ok(line, `the command prints ${label}`);
  return line.slice(line.indexOf(':') + 1).trim();
}

async function head(path: string, bytes: number): Promise<Buffer> {
  const file = await open(path);
  try {
    const buffer = Buffer.alloc(bytes);
    const { bytesRead } = await file.read(buffer, 0, bytes, 0);
    return buffer.subarray(0, bytesRead);
  } finally {
    await file.close();
  }
}

/** The vertex count a binary .ply header declares. */
async function plyVertices(path: string): Promise<number> {
  const text = (await head(path, 4096)).toString('latin1');
  assert.match(text, /^ply\nformat binary_little_endian 1\.0\n/, `${path} is a binary .ply`);
  assert.match(text, /\nend_header\n/);
  return Number(/\nelement vertex (\d+)\n/.exec(text)?.[1]);
}

interface Report {
  stages: Array<{ stage: string; metrics: Record<string, unknown> }>;
  skipped: string[];
}

/**
 * What every successful run must give a user: a binary 3DGS .ply, a web splat, a mesh as .ply and
 * glTF 2.0, and a report listing every stage that ran, depth skipped. Answers the report.
 */
async function checkOutputs(stdout: string, minGaussians: number): Promise<Report> {
  assert.match(stdout, /depth: skipped — no SPLATFLOW_DEPTH_MODEL_URI configured/);
  assert.match(stdout, /COMPLETED/);
  const gaussians = await plyVertices(printed(stdout, 'splat (3DGS .ply)'));
  assert.ok(gaussians >= minGaussians, `${gaussians} Gaussians: at least one per sparse point found`);
  assert.ok((await readFile(printed(stdout, 'splat (.spz, web)'))).length > 1000);
  assert.ok((await plyVertices(printed(stdout, 'mesh (.ply)'))) > 100);
  const glb = await head(printed(stdout, 'mesh (.glb)'), 12);
  assert.equal(glb.subarray(0, 4).toString('latin1'), 'glTF');
  assert.equal(glb.readUInt32LE(4), 2, 'glTF 2.0');

  const report = JSON.parse(await readFile(printed(stdout, 'report'), 'utf8')) as Report;
  assert.deepEqual(
    report.stages.map((s) => s.stage),
    ['frames', 'filter', 'sfm', 'train', 'mesh', 'export'],
  );
  assert.deepEqual(report.skipped, ['depth']);
  return report;
}

function metrics<T>(report: Report, stage: string): T {
  return report.stages.find((s) => s.stage === stage)!.metrics as T;
}

describe('npm run reconstruct (end to end on real data)', () => {
  it('turns the sample video into a splat, a mesh and a report through the real workflow', async () => {
    const video = sharedData('watch', 'watch_orbit.mp4');
    const run = await reconstruct([video, '--out', join(work, 'video'), '--iterations', '150']);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const report = await checkOutputs(run.stdout, 500);

    const frames = metrics<{ source: string; count: number }>(report, 'frames');
    assert.equal(frames.source, 'video');
    assert.equal(frames.count, 44, 'preview keeps every frame of this 44-frame clip');
    const sfm = metrics<{ images_input: number; images_registered: number }>(report, 'sfm');
    // Measured 33 of 43 (the filter drops one near-duplicate); the gate needs 60 %.
    assert.ok(sfm.images_registered >= 0.6 * sfm.images_input, `${sfm.images_registered} of ${sfm.images_input}`);
    const train = metrics<{ quality: { test: { psnr: number; views: number } } }>(report, 'train');
    // A splat that learns: 11.8-14.9 dB after 150 steps on the interpolated held-out views (2026-12-08, either
    // mapper; 14.8 dB at e1be1de on the same machine), 7.4 dB after 20.
    assert.ok(train.quality.test.psnr > 10, `held-out PSNR ${train.quality.test.psnr} dB`);
    // The mesh at the same held-out views (docs/training.md#the-mesh). This splat is 150 steps in, so its surface
    // is patchy: 69-85 % of the pixels covered over four runs (2026-12-08, both mappers; the preview's 1 500 steps:
    // 91-93 %), and on them 17.3-19.3 dB against the splat's 13.2-15.9 dB (the mesh's colours come from the photos).
    type Scores = { psnr: number; covered: number; psnr_on_mesh: number };
    const mesh = metrics<{ quality: { views: number; mesh: Scores; splat: Scores } }>(report, 'mesh').quality;
    assert.equal(mesh.views, train.quality.test.views);
    assert.ok(mesh.mesh.covered >= 0.6, `mesh covers ${mesh.mesh.covered} of the held-out pixels`);
    assert.ok(
      mesh.mesh.psnr_on_mesh >= mesh.splat.psnr_on_mesh - 4,
      `mesh ${mesh.mesh.psnr_on_mesh} dB, splat ${mesh.splat.psnr_on_mesh} dB on the mesh's pixels`,
    );
  });

  it('turns real photos (a .zip) into a splat, a mesh and a report through the real workflow', async () => {
    const photos = sharedData('sceaux_castle', 'images');
    const zip = join(work, 'castle.zip');
    const names = (await readdir(photos)).filter((name) => /\.jpe?g$/i.test(name)).sort();
    execFileSync(PYTHON, ['-m', 'zipfile', '-c', zip, ...names], { cwd: photos });

    const run = await reconstruct([zip, '--out', join(work, 'ok'), '--iterations', '20']);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const report = await checkOutputs(run.stdout, 1000);
    const sfm = metrics<{ images_registered: number }>(report, 'sfm');
    assert.ok(sfm.images_registered >= 8, `most photos register (${sfm.images_registered})`);
    const train = metrics<{ quality: { test: { psnr: number } } }>(report, 'train');
    // Measured 7.2 dB after 20 steps on its one held-out photo (the fifth; 9.8 dB on other views before the
    // held-out set was chosen from the input).
    assert.ok(train.quality.test.psnr > 6, `held-out PSNR ${train.quality.test.psnr} dB`);
  });

  it('exits 1 naming the failing stage and its cause when a video cannot be reconstructed', async () => {
    // Frames of independent noise: textured enough for the frames stage, but nothing matches between them.
    // (A sparse plan of a real clip no longer fails: the frames stage keeps the overlap matching needs.)
    const video = join(work, 'noise.mp4');
    await noiseClip(video, { width: 320, height: 240, seconds: 3, fps: 10 });
    const run = await reconstruct([video, '--out', join(work, 'failed'), '--iterations', '5']);
    assert.equal(run.code, 1, run.stdout + run.stderr);
    const failed = run.stdout.split('\n').find((line) => line.includes('FAILED at'));
    // The stage's own cause, first and alone: not behind the job's "Execution … failed: the container exited …".
    assert.match(
      failed ?? '',
      /^\[\d+:\d\d\] FAILED at sfm: only \d+ of \d+ frames registered .*the clip may be too fast, too dark or lack overlap/,
    );
    assert.doesNotMatch(failed!, /Execution|container exited|sfm failed/);
    assert.doesNotMatch(run.stdout, /COMPLETED/);

    // Refused on the first attempt; Cloud Run's retry (max_retries 1) answered that without running COLMAP again.
    const requests = join(work, 'failed', 'splatflow-local', 'requests');
    const [id] = await readdir(requests);
    const record = checkErrorRecord(JSON.parse(await readFile(join(requests, id!, 'sfm', 'error.json'), 'utf8')));
    assert.deepEqual([record.refused, record.exit_code, record.attempt], [true, 2, 0]);
    assert.ok(failed!.endsWith(`FAILED at sfm: ${record.message}`));
    assert.equal(run.stderr.match(/refused by an earlier attempt of this execution; not run again/g)?.length, 1);
  });

  it('refuses a missing input with exit code 2 before starting anything', async () => {
    const run = await reconstruct([join(work, 'no-such-video.mp4')]);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /no video file at .*no-such-video\.mp4/);
  });
});
