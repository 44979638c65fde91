/**
 * The dispatcher starts a workflow execution for each QUEUED request while fewer than the
 * configured number are PROCESSING. It takes requests with the queue's atomic `next` (the cap is
 * checked inside the same Lua step, so concurrent dispatchers never exceed it) under a short
 * start lease; once the execution exists, the lease is extended to a whole workflow's length.
 * An execution that cannot be created returns the request to its place in the queue.
 */
import pRetry from 'p-retry';
import type { Logger } from '../../lib/log.js';
import type { LeasedRequest } from '../queue/record.js';
import type { QueueService } from '../queue/service.js';
import { applyExecution, applyRelease, type RequestRecord } from '../records/record.js';
import type { Lifecycle } from '../records/lifecycle.js';
import type { RequestStore } from '../records/store.js';
import type { WorkflowRunner } from './workflows.js';

export interface DispatchSettings {
  maxConcurrent: number;
  startLeaseSeconds: number;
  leaseSeconds: number;
  startRetries: number;
  /** First retry delay of a failed start (ms); doubled each time. */
  retryDelayMs: number;
  /** `{prefix}{request_id}/` is a request's work folder. */
  outputPrefix: string;
}

export interface DispatchReport {
  started: Array<{ request_id: string; execution: string }>;
  returned: string[];
}

export class Dispatcher {
  constructor(
    private readonly queue: QueueService,
    private readonly store: RequestStore,
    private readonly lifecycle: Pick<Lifecycle, 'take'>,
    private readonly runner: WorkflowRunner,
    private readonly log: Logger,
    private readonly settings: DispatchSettings,
  ) {}

  async dispatch(): Promise<DispatchReport> {
    const report: DispatchReport = { started: [], returned: [] };
    for (;;) {
      const taken = await this.lifecycle.take(this.settings.startLeaseSeconds, this.settings.maxConcurrent);
      if (!taken) return report;
      const id = taken.request.request_id;
      const execution = await this.start(taken.request, taken.record);
      if (execution === undefined) {
        // Workflows is failing: leave the rest queued for the next round rather than churn.
        report.returned.push(id);
        return report;
      }
      report.started.push({ request_id: id, execution });
    }
  }

  /** Answers the execution's name, or undefined when it could not be created (the request is back in the queue). */
  private async start(request: LeasedRequest, record: RequestRecord): Promise<string | undefined> {
    const id = request.request_id;
    const lease = request.lease_id;
    const now = () => new Date().toISOString();
    try {
      const execution = await pRetry(
        () =>
          this.runner.start({
            request_id: id,
            input_uri: record.input.uri,
            output_prefix: `${this.settings.outputPrefix}${id}/`,
            params: record.params,
          }),
        {
          retries: this.settings.startRetries,
          minTimeout: this.settings.retryDelayMs,
          factor: 2,
          onFailedAttempt: ({ error, attemptNumber }) =>
            this.log.warning('workflow start failed', { request_id: id, attempt: attemptNumber, error: error.message }),
        },
      );
      await this.store.change(id, (current) => applyExecution(current, lease, execution, now()));
      await this.queue.relet(id, lease, this.settings.leaseSeconds);
      this.log.info('workflow started', { request_id: id, execution });
      return execution;
    } catch (error) {
      const cause = { code: 'DISPATCH_FAILED', message: `workflow could not be started: ${(error as Error).message}` };
      await this.store.change(id, (current) => applyRelease(current, lease, cause, now()));
      await this.queue.release(id, lease, cause);
      this.log.error('request returned to the queue', { request_id: id, error: cause.message });
      return undefined;
    }
  }
}
