/**
 * `npm run bench:stages`: frames per second of the stages' own work on the real watch video
 * (looped to 220 frames), beside ffmpeg's plain decode rate of the same clip. Depth uses the
 * model named by SPLATFLOW_DEPTH_MODEL_URI when set, else the channel-mean stand-in model of the
 * tests (which measures only the pre/post-processing around the model).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createLogger } from '../../lib/log.js';
import { depthStage } from '../../jobs/depth/stage.js';
import { filterStage } from '../../jobs/filter/stage.js';
import { framesStage } from '../../jobs/frames/stage.js';
import { runStage } from '../../jobs/runtime/runner.js';
import { createLocalStorage } from '../../jobs/runtime/storage-local.js';
import { ffmpeg, WATCH_VIDEO } from '../support/media.js';
import { depthModel } from '../support/onnx-model.js';
import { readManifest } from '../support/stage-process.js';

const run = promisify(execFile);
const out = (line: string) => process.stdout.write(line + '\n');

async function decodeRate(clip: string, frames: number, filter?: string): Promise<number> {
  const begin = performance.now();
  await run('ffmpeg', ['-v', 'error', '-i', clip, ...(filter ? ['-vf', filter] : []), '-f', 'null', '-']);
  return frames / ((performance.now() - begin) / 1000);
}

const work = await mkdtemp(join(tmpdir(), 'bench-stages-'));
try {
  const clip = join(work, 'clip.mp4');
  await ffmpeg('-stream_loop', '4', '-i', WATCH_VIDEO, '-c', 'copy', clip);
  const prefix = join(work, 'req') + '/';
  let model = process.env.SPLATFLOW_DEPTH_MODEL_URI;
  if (!model) {
    model = join(work, 'mean.onnx');
    await writeFile(model, depthModel());
  }
  for (const [stage, params] of [
    ['frames', { target_frames: 220, min_frames: 10 }],
    ['filter', { min_frames: 10 }],
    ['depth', { model_uri: model, execution_provider: process.env.BENCH_PROVIDER ?? 'auto' }],
  ] as const) {
    const code = await runStage([framesStage, filterStage, depthStage], {
      env: {
        SPLATFLOW_STAGE: stage,
        SPLATFLOW_REQUEST_ID: 'bench',
        SPLATFLOW_INPUT_URI: clip,
        SPLATFLOW_REQUEST_PREFIX: prefix,
        SPLATFLOW_PARAMS: JSON.stringify(params),
      },
      storage: createLocalStorage(),
      log: createLogger({ sink: () => undefined }),
    });
    if (code !== 0) throw new Error(`${stage} failed`);
  }
  const frames = await readManifest(join(prefix, 'frames', 'manifest.json'));
  const filter = await readManifest(join(prefix, 'filter', 'manifest.json'));
  const depth = await readManifest(join(prefix, 'depth', 'manifest.json'));
  const decoded = (frames.metrics as { video: { frames_decoded: number; width: number; height: number } }).video;
  const kept = (filter.metrics as { count_in: number }).count_in;
  const rate = (n: number, s: number | undefined) => (n / (s ?? NaN)).toFixed(1);
  out(`clip: ${decoded.frames_decoded} frames ${decoded.width}×${decoded.height} (watch_orbit.mp4 ×5)`);
  out(`ffmpeg decode only                 ${(await decodeRate(clip, decoded.frames_decoded)).toFixed(1)} frames/s`);
  out(
    `ffmpeg decode + scale to 480 grey  ${(await decodeRate(clip, decoded.frames_decoded, 'scale=360:480,format=gray')).toFixed(1)} frames/s`,
  );
  out(`frames: score (decode + Laplacian) ${rate(decoded.frames_decoded, frames.timings.score)} frames/s`);
  out(
    `frames: extract + normalise        ${rate(kept, (frames.timings.extract ?? 0) + (frames.timings.normalise ?? 0))} frames/s`,
  );
  out(`filter: score (sharp decode, Laplacian, exposure, dHash) ${rate(kept, filter.timings.score)} frames/s`);
  const metrics = depth.metrics as { frames_per_second: number; execution_provider: string; model: { uri: string } };
  out(
    `depth (${metrics.execution_provider}, ${process.env.SPLATFLOW_DEPTH_MODEL_URI ? metrics.model.uri : 'stand-in model'}) ${metrics.frames_per_second} frames/s`,
  );
} finally {
  await rm(work, { recursive: true, force: true });
}
