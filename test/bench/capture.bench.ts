/**
 * `npm run bench:capture [VIDEO]`: frames → filter → sfm at the preview preset's parameters (the
 * ones `npm run reconstruct` sends) on a real handheld clip, `../shared/data/room/room.mp4` by
 * default: each stage's time, and what each kept of the video, with the sfm ladder's rungs. The
 * issue's budget is sfm at preview in at most 4 minutes on 2 cores; a benchmark, not a test,
 * since shared machines vary (state the load beside any figure).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../../lib/log.js';
import { filterStage } from '../../jobs/filter/stage.js';
import type { FilterMetrics } from '../../jobs/filter/stage.js';
import { framesStage, type FramesMetrics } from '../../jobs/frames/stage.js';
import { runStage } from '../../jobs/runtime/runner.js';
import { createLocalStorage } from '../../jobs/runtime/storage-local.js';
import { sfmStage } from '../../jobs/sfm/stage.js';
import type { SfmMetrics } from '../../jobs/sfm/schema.js';
import { requestParams } from '../../local/reconstruct/params.js';
import { sharedData } from '../support/data.js';
import { readManifest } from '../support/stage-process.js';

const out = (line: string) => process.stdout.write(line + '\n');
const video = process.argv[2] ?? sharedData('room', 'room.mp4');
const params = requestParams({ preset: 'preview' }) as Record<string, Record<string, unknown>>;
const work = await mkdtemp(join(tmpdir(), 'bench-capture-'));
try {
  const prefix = join(work, 'req') + '/';
  const seconds: Record<string, number> = {};
  for (const stage of ['frames', 'filter', 'sfm'] as const) {
    const begin = performance.now();
    const code = await runStage([framesStage, filterStage, sfmStage], {
      env: {
        SPLATFLOW_STAGE: stage,
        SPLATFLOW_REQUEST_ID: 'bench',
        SPLATFLOW_INPUT_URI: video,
        SPLATFLOW_REQUEST_PREFIX: prefix,
        SPLATFLOW_PARAMS: JSON.stringify(params[stage] ?? {}),
      },
      storage: createLocalStorage(),
      log: createLogger({ sink: (line) => (stage === 'sfm' && /failed|WARNING/.test(line) ? out(line) : undefined) }),
    });
    seconds[stage] = (performance.now() - begin) / 1000;
    if (code !== 0) throw new Error(`${stage} failed (exit ${code})`);
  }
  const frames = (await readManifest(join(prefix, 'frames', 'manifest.json'))).metrics as unknown as FramesMetrics;
  const filter = (await readManifest(join(prefix, 'filter', 'manifest.json'))).metrics as unknown as FilterMetrics;
  const sfm = (await readManifest(join(prefix, 'sfm', 'manifest.json'))).metrics as unknown as SfmMetrics;
  out(`clip: ${video}`);
  out(
    `frames ${seconds.frames!.toFixed(1)} s: ${frames.video?.frames_decoded} decoded, ${frames.count} chosen (travel ${frames.video?.travel} widths, step ${frames.video?.step}, set by ${frames.video?.limited_by})`,
  );
  out(
    `filter ${seconds.filter!.toFixed(1)} s: ${filter.count_kept} of ${filter.count_in} kept, ${filter.count_replaced} replaced, ${filter.count_kept_for_coverage} kept for coverage, largest gap ${filter.max_gap}`,
  );
  out(
    `sfm    ${seconds.sfm!.toFixed(1)} s: ${sfm.images_registered} of ${sfm.images_input} registered (${(100 * sfm.registered_share).toFixed(0)}%), ${sfm.points} points, ${sfm.mean_reprojection_error_px.toFixed(2)} px${sfm.partial ? ', PARTIAL' : ''}`,
  );
  for (const rung of sfm.ladder) {
    out(`  ${rung.rung}: ${rung.outcome} (${rung.note}) ${rung.registered}/${rung.images} in ${rung.seconds} s`);
  }
} finally {
  await rm(work, { recursive: true, force: true });
}
