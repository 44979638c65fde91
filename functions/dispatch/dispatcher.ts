/**
 * The dispatcher starts a workflow execution for each QUEUED request while fewer than the
 * configured number are PROCESSING. It takes requests with the queue's atomic `next` (the cap is
 * checked inside the same Lua step, so concurrent dispatchers never exceed it) under a short
 * start lease; once the execution exists, the lease is extended to a whole workflow's length.
 * A start Workflows refuses for good (INVALID_ARGUMENT and the other 4xx but 429) fails the request
 * with its cause and the round goes on; a start that keeps failing transiently returns the request
 * to its place in the queue and ends the round, the attempt counted, so that after the queue's
 * most attempts it fails instead of being tried forever. A request that ends while its execution
 * starts (a cancel before the execution is on the record) has that execution cancelled here.
 */
import pRetry from 'p-retry';
import type { Logger } from '../../lib/log.js';
import type { LeasedRequest } from '../queue/redis-hash.js';
import type { StageError } from '../queue/schemas.js';
import type { QueueService } from '../queue/service.js';
import { applyExecution, applyRelease, TERMINAL, type RequestRecord } from '../records/request-record.js';
import type { Lifecycle } from '../records/lifecycle.js';
import type { RequestStore } from '../records/store.js';
import { workflowArgument } from './argument.js';
import { transientError, type WorkflowRunner } from './workflows.js';

export interface DispatchSettings {
  maxConcurrent: number;
  startLeaseSeconds: number;
  leaseSeconds: number;
  startRetries: number;
  /** First retry delay of a failed start (ms); doubled each time. */
  retryDelayMs: number;
  /** Attempts (the queue's QUEUE_MAX_ATTEMPTS) after which a start that keeps failing fails the request. */
  maxAttempts: number;
  /** `{prefix}{request_id}/` is a request's work folder. */
  outputPrefix: string;
}

export interface DispatchReport {
  started: Array<{ request_id: string; execution: string }>;
  /** Back in the queue: Workflows failed transiently (the round ended there). */
  returned: string[];
  /** FAILED: Workflows refused the start, or transient failures used up the request's attempts. */
  failed: Array<{ request_id: string; error: StageError }>;
}

type StartOutcome =
  | { kind: 'started'; execution: string }
  | { kind: 'returned' }
  | { kind: 'failed'; error: StageError }
  | { kind: 'ended' };

export class Dispatcher {
  constructor(
    private readonly queue: QueueService,
    private readonly store: RequestStore,
    private readonly lifecycle: Pick<Lifecycle, 'take' | 'update'>,
    private readonly runner: WorkflowRunner,
    private readonly log: Logger,
    private readonly settings: DispatchSettings,
  ) {}

  async dispatch(): Promise<DispatchReport> {
    const report: DispatchReport = { started: [], returned: [], failed: [] };
    for (;;) {
      const taken = await this.lifecycle.take(this.settings.startLeaseSeconds, this.settings.maxConcurrent);
      if (!taken) return report;
      const id = taken.request.request_id;
      const outcome = await this.start(taken.request, taken.record);
      if (outcome.kind === 'started') report.started.push({ request_id: id, execution: outcome.execution });
      else if (outcome.kind === 'failed') report.failed.push({ request_id: id, error: outcome.error });
      else if (outcome.kind === 'returned') {
        // Workflows is failing: leave the rest queued for the next round rather than churn.
        report.returned.push(id);
        return report;
      }
    }
  }

  private async start(request: LeasedRequest, record: RequestRecord): Promise<StartOutcome> {
    const id = request.request_id;
    const lease = request.lease_id;
    const now = () => new Date().toISOString();
    const argument = workflowArgument(record, this.settings.outputPrefix);
    let started: { name: string; adopted: boolean };
    try {
      started = await pRetry(() => this.runner.start(argument), {
        retries: this.settings.startRetries,
        minTimeout: this.settings.retryDelayMs,
        factor: 2,
        shouldRetry: ({ error }) => transientError(error),
        onFailedAttempt: ({ error, attemptNumber }) =>
          this.log.warning('workflow start failed', { request_id: id, attempt: attemptNumber, error: error.message }),
      });
    } catch (error) {
      return this.notStarted(request, record, error as Error);
    }
    const recorded = await this.store.change(id, (current) => applyExecution(current, lease, started.name, now()));
    if (recorded.kind === 'illegal_transition' && TERMINAL.has(recorded.current)) {
      await this.stopUnwanted(id, started.name);
      return { kind: 'ended' };
    }
    await this.queue.resizeLease(id, lease, this.settings.leaseSeconds);
    this.log.info(started.adopted ? 'running workflow adopted' : 'workflow started', {
      request_id: id,
      execution: started.name,
    });
    return { kind: 'started', execution: started.name };
  }

  /**
   * The request ended (was cancelled, most often) before its execution was on the record, so the cancel
   * could not reach the execution. Without this, the workflow would learn it only at its first stage's
   * report, after starting that stage's job. One that has ended by itself needs nothing.
   */
  private async stopUnwanted(id: string, execution: string): Promise<void> {
    try {
      await this.runner.cancel(execution);
      this.log.info('workflow cancelled: its request ended while it started', { request_id: id, execution });
    } catch (error) {
      const ended = await this.runner.state(execution).then(
        (current) => current.state !== 'ACTIVE',
        () => false,
      );
      if (ended) return;
      this.log.warning('workflow of an ended request not cancelled', {
        request_id: id,
        execution,
        error: (error as Error).message,
      });
    }
  }

  private async notStarted(request: LeasedRequest, record: RequestRecord, error: Error): Promise<StartOutcome> {
    const id = request.request_id;
    const lease = request.lease_id;
    const message = `workflow could not be started: ${error.message}`.slice(0, 4096);
    const transient = transientError(error);
    if (transient && record.attempts < this.settings.maxAttempts) {
      const cause = { code: 'DISPATCH_FAILED', message };
      await this.store.change(id, (current) => applyRelease(current, lease, cause, new Date().toISOString()));
      await this.queue.requeueUnstarted(id, lease, cause);
      this.log.error('request returned to the queue', { request_id: id, attempts: record.attempts, error: message });
      return { kind: 'returned' };
    }
    const cause = transient
      ? { code: 'DISPATCH_FAILED', message: `${message} (attempt ${record.attempts} of ${this.settings.maxAttempts})` }
      : { code: 'WORKFLOW_REFUSED', message };
    await this.lifecycle.update(id, { status: 'FAILED', lease_id: lease, error: cause });
    this.log.error('request failed: its workflow cannot be started', { request_id: id, error: cause.message });
    return { kind: 'failed', error: cause };
  }
}
