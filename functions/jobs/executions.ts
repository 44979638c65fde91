/**
 * Cloud Run job executions a request's workflow started, cancelled with the request, on the real
 * `@google-cloud/run` ExecutionsClient (REST transport). `RUN_EMULATOR_HOST` points it at a local server
 * speaking the same API (the local stack's), as WORKFLOWS_EMULATOR_HOST does for Workflows.
 * Cancelling asks Cloud Run to stop the execution's tasks
 * (https://cloud.google.com/run/docs/reference/rest/v2/projects.locations.jobs.executions/cancel); the
 * operation is not awaited: the execution ends on its own once cancelled.
 */
import { v2 } from '@google-cloud/run';
import { restClientOptions } from '../google/emulator.js';

export interface JobExecutions {
  cancel(execution: string): Promise<void>;
}

export function jobExecutions(settings: { emulatorHost?: string }): JobExecutions {
  const client = new v2.ExecutionsClient(restClientOptions(settings.emulatorHost));
  return {
    async cancel(name) {
      await client.cancelExecution({ name });
    },
  };
}
