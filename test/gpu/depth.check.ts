/**
 * The GPU check of the depth stage's model runner (`node dist/test/gpu/depth.check.js`, run by
 * jobs/train/gpu-check): the ONNX model named by SPLATFLOW_DEPTH_MODEL_URI, else the tests'
 * channel-mean stand-in (which proves only that onnxruntime runs a graph on CUDA, not a real
 * model's speed), loaded with the CUDA execution provider insisted on, then timed on 518×518
 * batches as the stage feeds it. Prints one JSON line; exits 1 when CUDA cannot run it.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel, ortVersion, predict } from '../../jobs/depth/model.js';
import { depthModel } from '../support/onnx-model.js';

const work = await mkdtemp(join(tmpdir(), 'depth-gpu-check-'));
try {
  let path = process.env.SPLATFLOW_DEPTH_MODEL_URI;
  if (!path) {
    path = join(work, 'mean.onnx');
    await writeFile(path, depthModel());
  }
  const loadStart = performance.now();
  const model = await loadModel(path, 'cuda');
  const loadSeconds = (performance.now() - loadStart) / 1000;
  const size = model.fixedSize ?? { width: 518, height: 518 };
  const batch = model.fixedBatch ?? 4;
  const data = new Float32Array(batch * 3 * size.width * size.height).map(() => Math.random());
  await predict(model, data, batch, size); // warm-up: CUDA kernels and memory arenas
  const runs = 10;
  const begin = performance.now();
  for (let i = 0; i < runs; i++) await predict(model, data, batch, size);
  const seconds = (performance.now() - begin) / 1000;
  process.stdout.write(
    JSON.stringify({
      provider: model.provider,
      onnxruntime: ortVersion(),
      model: process.env.SPLATFLOW_DEPTH_MODEL_URI ? path : 'stand-in (channel mean)',
      input: [batch, 3, size.height, size.width],
      load_seconds: Number(loadSeconds.toFixed(2)),
      frames_per_second: Number(((runs * batch) / seconds).toFixed(1)),
    }) + '\n',
  );
} catch (error) {
  process.stderr.write(`depth gpu-check: ${(error as Error).message}\n`);
  process.exitCode = 1;
} finally {
  await rm(work, { recursive: true, force: true });
}
