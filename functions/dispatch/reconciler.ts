/**
 * The reconciler repairs what a crash or a Redis failover can leave behind:
 * - a PROCESSING record missing from Redis is restored there under its lease, first, so that it counts
 *   towards the concurrency cap again before the queue is refilled (else dispatch would start the cap's
 *   number more beside the requests still running);
 * - a QUEUED record missing from the Redis queue is queued again;
 * - a PROCESSING record whose workflow execution has ended is settled (COMPLETED with the
 *   execution's outputs, or FAILED with its error), as the workflow's own final report would have.
 */
import type { Logger } from '../../lib/log.js';
import type { Lifecycle } from '../records/lifecycle.js';
import type { RequestStore } from '../records/store.js';
import type { QueueService } from '../queue/service.js';
import type { WorkflowRunner } from './workflows.js';

export interface ReconcileReport {
  restored: string[];
  requeued: string[];
  settled: Array<{ request_id: string; status: 'COMPLETED' | 'FAILED' }>;
}

const outputsOf = (result: unknown): Record<string, unknown> | undefined => {
  const outputs = (result as { outputs?: unknown } | null)?.outputs;
  return outputs && typeof outputs === 'object' && !Array.isArray(outputs)
    ? (outputs as Record<string, unknown>)
    : undefined;
};

/**
 * The next page of records with the status. Each run takes up where the last one stopped (a cursor
 * kept in Firestore), and starts over after a short page, so that however many records there are,
 * every one is examined within a few runs instead of the same first page each time.
 */
async function nextPage(store: RequestStore, status: 'QUEUED' | 'PROCESSING', batch: number) {
  const cursor = `reconcile-${status}`;
  const records = await store.withStatus(status, batch, await store.cursor(cursor));
  await store.setCursor(cursor, records.length === batch ? records[records.length - 1]!.request_id : undefined);
  return records;
}

/** Lease lengths (s) of a restored request: while its execution starts, and once it runs (the dispatcher's). */
export interface RestoredLeases {
  startSeconds: number;
  runningSeconds: number;
}

export async function reconcile(
  deps: { store: RequestStore; queue: QueueService; lifecycle: Lifecycle; runner: WorkflowRunner; log: Logger },
  batch: number,
  leases: RestoredLeases,
): Promise<ReconcileReport> {
  const report: ReconcileReport = { restored: [], requeued: [], settled: [] };
  const processing = await nextPage(deps.store, 'PROCESSING', batch);
  for (const record of processing) {
    if (!record.lease_id) continue;
    const seconds = record.execution ? leases.runningSeconds : leases.startSeconds;
    if (!(await deps.queue.restoreRunning(record, record.lease_id, seconds))) continue;
    report.restored.push(record.request_id);
    deps.log.warning('running record was missing from the queue; restored', { request_id: record.request_id });
  }
  for (const record of await nextPage(deps.store, 'QUEUED', batch)) {
    if (await deps.queue.get(record.request_id)) continue;
    await deps.lifecycle.ensureQueued(record);
    report.requeued.push(record.request_id);
    deps.log.warning('queued record was missing from the queue; re-queued', { request_id: record.request_id });
  }
  for (const record of processing) {
    if (!record.execution) continue;
    const execution = await deps.runner.state(record.execution);
    if (execution.state === 'ACTIVE') continue;
    const outputs = execution.state === 'SUCCEEDED' ? outputsOf(execution.result) : undefined;
    const settled = await deps.lifecycle.update(
      record.request_id,
      execution.state === 'SUCCEEDED'
        ? { status: 'COMPLETED', lease_id: record.lease_id, ...(outputs ? { outputs } : {}) }
        : {
            status: 'FAILED',
            lease_id: record.lease_id,
            error: { code: `WORKFLOW_${execution.state}`, message: execution.error.slice(0, 4096) },
          },
    );
    if (settled.kind === 'ok') {
      const status = settled.record.status as 'COMPLETED' | 'FAILED';
      report.settled.push({ request_id: record.request_id, status });
      deps.log.warning('ended execution settled', {
        request_id: record.request_id,
        status,
        execution: record.execution,
      });
    }
  }
  return report;
}
