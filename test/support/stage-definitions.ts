/**
 * The real job definitions (timeouts, retries) with every stage's command swapped for the contract-honouring
 * test program (test/workflows/fixtures/stage.ts): the real workflow runs a whole request in seconds.
 */
import { fileURLToPath } from 'node:url';
import { loadDefinitions, type JobDefinitions } from '../../local/jobs/definitions.js';

const STAGE_PROGRAM = fileURLToPath(new URL('../workflows/fixtures/stage.js', import.meta.url));

export function testStageDefinitions(): JobDefinitions {
  const real = loadDefinitions();
  return {
    ...real,
    stages: Object.fromEntries(
      Object.entries(real.stages).map(([stage, job]) => [
        stage,
        { ...job, command: [process.execPath, STAGE_PROGRAM] },
      ]),
    ),
  };
}
