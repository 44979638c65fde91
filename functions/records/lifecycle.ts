/**
 * Every status change of a request: Firestore (the truth) first, then the Redis queue. A crash
 * between the two leaves the record ahead of the queue, never behind it; the reconciler and the
 * dispatcher bring the queue back in line (docs/records.md).
 */
import type { Logger } from '../../lib/log.js';
import type { Status, UpdateBody } from '../queue/schemas.js';
import { DuplicateRequestError, type ExpiredLease, type QueueService, type UpdateResult } from '../queue/service.js';
import type { LeasedRequest } from '../queue/redis-hash.js';
import { RedisUnavailableError } from '../redis/connection.js';
import { applyExpiry, applyTake, applyUpdate, TERMINAL, type RequestRecord } from './request-record.js';
import type { RequestStore, StoreChange } from './store.js';

export interface LifecycleHooks {
  /** A request reached a terminal status (webhook delivery; must not throw). */
  ended(record: RequestRecord): void;
  /** Something may be startable now (a request was queued or ended). */
  kick(): void;
  /**
   * A PROCESSING request was cancelled: stop its workflow execution and the job executions it started
   * (the record as cancelled still names them; must not throw).
   */
  cancelled(record: RequestRecord): void;
}

export type LifecycleUpdate =
  Exclude<StoreChange, { kind: 'ok' }> | { kind: 'ok'; record: RequestRecord; queued?: LeasedRequest };

export class Lifecycle {
  constructor(
    private readonly store: RequestStore,
    private readonly queue: QueueService,
    private readonly log: Logger,
    private readonly hooks: LifecycleHooks,
  ) {}

  /**
   * Records a new request and queues it. Repeats (same id) are harmless: the record is created
   * once, and a record still QUEUED is put in the queue unless it is there already. Once the record
   * exists the request is accepted even if Redis is down (no position then): the record is the
   * truth and `reconcile` queues it, so a caller is never told to retry what was already created.
   */
  async admit(record: RequestRecord): Promise<{ created: boolean; record: RequestRecord; position?: number }> {
    const created = await this.store.create(record);
    const current = created ? record : await this.store.get(record.request_id);
    if (!current) throw new Error(`record ${record.request_id} vanished after create`);
    let position: number | undefined;
    if (current.status === 'QUEUED') {
      try {
        position = await this.ensureQueued(current);
      } catch (error) {
        if (!(error instanceof RedisUnavailableError)) throw error;
        this.log.warning('request recorded but not queued (Redis unavailable); reconcile queues it', {
          request_id: current.request_id,
          error: error.message,
        });
      }
    }
    if (created) this.hooks.kick();
    return { created, record: current, ...(position === undefined ? {} : { position }) };
  }

  /** Puts a QUEUED record into the Redis queue if it is missing there; answers its position. */
  async ensureQueued(record: RequestRecord): Promise<number | undefined> {
    try {
      const { position } = await this.queue.enqueue(
        { session_id: record.session_id, input: record.input, priority: record.priority, params: record.params },
        record.request_id,
      );
      return position;
    } catch (error) {
      if (error instanceof DuplicateRequestError) return (await this.queue.get(record.request_id))?.position;
      throw error;
    }
  }

  /** A status report (the queue's PUT /status/{id}, the reconciler's settlement). */
  async update(requestId: string, body: UpdateBody): Promise<LifecycleUpdate> {
    const change = await this.store.change(requestId, (record) => applyUpdate(record, body, new Date().toISOString()));
    if (change.kind !== 'ok') return change;
    let queued: UpdateResult | undefined;
    try {
      queued = await this.queue.update(requestId, body);
    } catch (error) {
      this.log.error('queue update failed after the record changed; repaired later', { request_id: requestId, error });
    }
    if (queued && queued.kind !== 'ok') {
      this.log.warning('queue out of step with the record', { request_id: requestId, queue: queued });
    }
    if (change.record.status === 'CANCELLED' && (change.record.execution || change.record.job_executions?.length)) {
      this.hooks.cancelled(change.record);
    }
    if (TERMINAL.has(change.record.status)) {
      this.hooks.ended(change.record);
      this.hooks.kick();
    }
    return { ...change, ...(queued?.kind === 'ok' ? { queued: queued.request } : {}) };
  }

  /**
   * Leases the queue expired (its atomic step decides, so here the record follows the queue).
   * A crash before this runs leaves the record PROCESSING; the reconciler settles it once its
   * execution has ended, and a re-queued request's next dispatch overwrites it.
   */
  async leasesExpired(expired: ExpiredLease[]): Promise<void> {
    for (const lease of expired) {
      this.log.warning('lease expired', { request_id: lease.request_id, outcome: lease.outcome });
      const change = await this.store.change(lease.request_id, (record) =>
        applyExpiry(record, lease.outcome, new Date().toISOString()),
      );
      if (change.kind === 'ok' && change.record.status === 'FAILED') this.hooks.ended(change.record);
    }
  }

  /**
   * Takes the next request from the queue (its atomic step; at most `maxProcessing` PROCESSING)
   * and records the take. A request the record says has finished, or has no record, is settled
   * in the queue to match and skipped.
   */
  async take(
    leaseSeconds?: number,
    maxProcessing?: number,
  ): Promise<{ request: LeasedRequest; record: RequestRecord } | undefined> {
    for (;;) {
      const { request, expired } = await this.queue.next(leaseSeconds, maxProcessing);
      await this.leasesExpired(expired);
      if (!request) return undefined;
      const taken = await this.store.change(request.request_id, (record) =>
        applyTake(record, request.lease_id, new Date().toISOString()),
      );
      if (taken.kind === 'ok') return { request, record: taken.record };
      await this.settleQueue(request, taken.kind === 'not_found' ? undefined : taken.current);
    }
  }

  /** Brings the queue's copy of a request it just handed out to the record's final status. */
  private async settleQueue(request: LeasedRequest, recorded: Status | undefined): Promise<void> {
    const id = request.request_id;
    const lease = request.lease_id;
    if (recorded === 'CANCELLED') {
      // The queue cancels only QUEUED requests: hand it back first.
      await this.queue.requeueUnstarted(id, lease, { code: 'CANCELLED', message: 'the record says CANCELLED' });
      await this.queue.update(id, { status: 'CANCELLED' });
    } else if (recorded === 'COMPLETED') {
      await this.queue.update(id, { status: 'COMPLETED', lease_id: lease });
    } else {
      const error =
        recorded === undefined
          ? { code: 'NO_RECORD', message: 'the request has no durable record' }
          : { code: 'ALREADY_FINISHED', message: `the record says ${recorded}` };
      await this.queue.update(id, { status: 'FAILED', lease_id: lease, error });
    }
    this.log.warning('queue settled to match the record', { request_id: id, recorded });
  }
}
