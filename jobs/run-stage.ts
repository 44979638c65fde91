/**
 * The one entry point of the TypeScript stages: `node dist/jobs/run-stage.js <stage>` with the
 * contract's environment (jobs/README.md).
 */
import { depthStage } from './depth/stage.js';
import { exportStage } from './export/stage.js';
import { filterStage } from './filter/stage.js';
import { framesStage } from './frames/stage.js';
import { openStorage } from './runtime/open-storage.js';
import { runStage } from './runtime/runner.js';
import type { AnyStage } from './runtime/stage.js';
import { sfmStage } from './sfm/stage.js';

export const STAGE_REGISTRY: readonly AnyStage[] = [framesStage, filterStage, depthStage, sfmStage, exportStage];

process.exitCode = await runStage(STAGE_REGISTRY, {
  env: process.env,
  stage: process.argv[2],
  storage: openStorage(),
  tty: process.stdout.isTTY ? process.stdout : undefined,
});
