/**
 * The request queue on Redis. Every state change is one Lua script (see `lua/`); this module only
 * builds keys and arguments and shapes the replies.
 */
import { randomUUID } from 'node:crypto';
import type { RedisConnection } from '../redis/connection.js';
import { redisScripts, type RedisScripts } from '../redis/scripts.js';
import {
  hashToLeasedRequest,
  hashToRequest,
  pairsToHash,
  type LeasedRequest,
  type QueueRequest,
} from './redis-hash.js';
import {
  DEFAULT_PRIORITY,
  MAX_PRIORITY,
  MIN_PRIORITY,
  STATUSES,
  type EnqueueBody,
  type StageError,
  type Status,
  type UpdateBody,
} from './schemas.js';

export interface QueueSettings {
  keyPrefix: string;
  leaseSeconds: number;
  maxAttempts: number;
  retentionSeconds: number;
}

export interface ExpiredLease {
  request_id: string;
  outcome: 'QUEUED' | 'FAILED';
}

export type UpdateResult =
  | { kind: 'ok'; request: LeasedRequest }
  | { kind: 'not_found' }
  | { kind: 'illegal_transition' | 'lease_mismatch'; current: Status };

export interface QueueStats {
  counts: Record<Status, number>;
  by_priority: Record<string, Record<Status, number>>;
  queue_length: number;
  oldest_queued_age_seconds: number | null;
  finished_last_hour: number;
}

export class DuplicateRequestError extends Error {
  override name = 'DuplicateRequestError';
}

function expiredPairs(flat: unknown): ExpiredLease[] {
  const pairs = pairsToHash(flat);
  return Object.entries(pairs).map(([request_id, outcome]) => ({
    request_id,
    outcome: outcome as ExpiredLease['outcome'],
  }));
}

/** Every change to the queue is one of these scripts (`lua/<name>.lua`), atomic in Redis. */
const QUEUE_SCRIPTS = [
  'enqueue',
  'lease-next',
  'expire-leases',
  'set-status',
  'stats',
  'requeue-unstarted',
  'resize-lease',
  'restore-running',
] as const;
type QueueScript = (typeof QUEUE_SCRIPTS)[number];

export class QueueService {
  private readonly keys;
  private readonly scripts: RedisScripts<QueueScript>;

  constructor(
    private readonly redis: RedisConnection,
    private readonly settings: QueueSettings,
  ) {
    // One hash tag keeps every key of the queue in one slot, as scripts on a cluster require.
    const base = `{${settings.keyPrefix}}:`;
    this.keys = {
      request: base + 'req:',
      queue: base + 'queue',
      leases: base + 'leases',
      counts: base + 'counts',
      seq: base + 'seq',
      finished: base + 'finished',
    };
    this.scripts = redisScripts(redis, new URL('./lua/', import.meta.url), QUEUE_SCRIPTS, [
      new URL('./lua/common.lua', import.meta.url),
    ]);
  }

  private async run(name: QueueScript, keys: string[], args: string[]): Promise<unknown> {
    return this.redis.run((client) => this.scripts.run(client, name, keys, args));
  }

  async enqueue(
    body: EnqueueBody,
    requestId: string = randomUUID(),
  ): Promise<{ request_id: string; position: number }> {
    const k = this.keys;
    try {
      const position = await this.run(
        'enqueue',
        [k.request + requestId, k.queue, k.seq, k.counts],
        [
          requestId,
          body.session_id,
          body.input.uri,
          String(body.priority ?? DEFAULT_PRIORITY),
          JSON.stringify(body.params ?? {}),
        ],
      );
      return { request_id: requestId, position: Number(position) };
    } catch (error) {
      if (error instanceof Error && error.message.startsWith('EXISTS')) throw new DuplicateRequestError(error.message);
      throw error;
    }
  }

  async get(requestId: string): Promise<QueueRequest | undefined> {
    const [hash, rank] = await this.redis.run((client) =>
      Promise.all([client.hGetAll(this.keys.request + requestId), client.zRank(this.keys.queue, requestId)]),
    );
    if (!hash.status) return undefined;
    const request = hashToRequest(hash);
    if (request.status === 'QUEUED' && rank !== null) request.position = rank + 1;
    return request;
  }

  /** `maxProcessing`: take nothing while that many requests are PROCESSING (checked in the same step). */
  async next(
    leaseSeconds = this.settings.leaseSeconds,
    maxProcessing?: number,
  ): Promise<{ request?: LeasedRequest; expired: ExpiredLease[] }> {
    const k = this.keys;
    const reply = (await this.run(
      'lease-next',
      [k.queue, k.leases, k.counts, k.finished],
      [
        k.request,
        String(leaseSeconds * 1000),
        randomUUID(),
        String(this.settings.maxAttempts),
        String(this.settings.retentionSeconds),
        maxProcessing === undefined ? '' : String(maxProcessing),
      ],
    )) as [unknown, unknown];
    const hash = pairsToHash(reply[1]);
    const expired = expiredPairs(reply[0]);
    return hash.status ? { request: hashToLeasedRequest(hash), expired } : { expired };
  }

  async update(requestId: string, body: UpdateBody, leaseSeconds = this.settings.leaseSeconds): Promise<UpdateResult> {
    const k = this.keys;
    const reply = (await this.run(
      'set-status',
      [k.request + requestId, k.queue, k.leases, k.counts, k.finished],
      [
        requestId,
        body.status,
        body.stage ?? '',
        body.progress === undefined ? '' : String(body.progress),
        body.error ? JSON.stringify(body.error) : '',
        body.outputs ? JSON.stringify(body.outputs) : '',
        String(leaseSeconds * 1000),
        body.lease_id ?? '',
        randomUUID(),
        String(this.settings.retentionSeconds),
      ],
    )) as [string, unknown];
    const [outcome, detail] = reply;
    if (outcome === 'OK') return { kind: 'ok', request: hashToLeasedRequest(pairsToHash(detail)) };
    if (outcome === 'NOT_FOUND') return { kind: 'not_found' };
    return { kind: outcome === 'LEASE_MISMATCH' ? 'lease_mismatch' : 'illegal_transition', current: detail as Status };
  }

  /**
   * Returns a PROCESSING request whose work could not start to its place in the queue (the attempt
   * counts). Only the holder of its lease may do so.
   */
  async requeueUnstarted(
    requestId: string,
    leaseId: string,
    error: StageError,
  ): Promise<Exclude<UpdateResult, { kind: 'ok' }> | { kind: 'ok' }> {
    const k = this.keys;
    const [outcome, current] = (await this.run(
      'requeue-unstarted',
      [k.request + requestId, k.queue, k.leases, k.counts],
      [requestId, leaseId, JSON.stringify(error)],
    )) as [string, string | undefined];
    if (outcome === 'OK') return { kind: 'ok' };
    if (outcome === 'NOT_FOUND') return { kind: 'not_found' };
    return { kind: outcome === 'LEASE_MISMATCH' ? 'lease_mismatch' : 'illegal_transition', current: current as Status };
  }

  /** Sets the lease length of a PROCESSING request (this lease and every renewal); only its holder may. */
  async resizeLease(
    requestId: string,
    leaseId: string,
    leaseSeconds: number,
  ): Promise<Exclude<UpdateResult, { kind: 'ok' }> | { kind: 'ok' }> {
    const k = this.keys;
    const [outcome, detail] = (await this.run(
      'resize-lease',
      [k.request + requestId, k.leases],
      [requestId, leaseId, String(leaseSeconds * 1000)],
    )) as [string, string];
    if (outcome === 'OK') return { kind: 'ok' };
    if (outcome === 'NOT_FOUND') return { kind: 'not_found' };
    return { kind: outcome === 'LEASE_MISMATCH' ? 'lease_mismatch' : 'illegal_transition', current: detail as Status };
  }

  /**
   * Puts a request the record says is PROCESSING under `leaseId` back into Redis, unless Redis has it:
   * after Redis lost its data it counts towards the cap again, and its reports renew the lease.
   * Answers whether it was missing.
   */
  async restoreRunning(
    request: Pick<
      QueueRequest,
      'request_id' | 'session_id' | 'input' | 'priority' | 'params' | 'attempts' | 'created_at' | 'started_at'
    >,
    leaseId: string,
    leaseSeconds: number,
  ): Promise<boolean> {
    const k = this.keys;
    const restored = await this.run(
      'restore-running',
      [k.request + request.request_id, k.seq, k.counts, k.leases],
      [
        request.request_id,
        request.session_id,
        request.input.uri,
        String(request.priority),
        JSON.stringify(request.params ?? {}),
        String(request.attempts),
        leaseId,
        String(leaseSeconds * 1000),
        String(Date.parse(request.created_at)),
        String(Date.parse(request.started_at ?? request.created_at)),
      ],
    );
    return Number(restored) === 1;
  }

  async expireLeases(): Promise<ExpiredLease[]> {
    const k = this.keys;
    const reply = await this.run(
      'expire-leases',
      [k.queue, k.leases, k.counts, k.finished],
      [k.request, String(this.settings.maxAttempts), String(this.settings.retentionSeconds)],
    );
    return expiredPairs(reply);
  }

  async stats(): Promise<QueueStats> {
    const k = this.keys;
    const [countsFlat, length, oldest, now, finished] = (await this.run(
      'stats',
      [k.queue, k.counts, k.finished],
      [k.request],
    )) as [unknown, number, string, string, number];
    const counters = pairsToHash(countsFlat);
    const zero = (): Record<Status, number> =>
      Object.fromEntries(STATUSES.map((status) => [status, 0])) as Record<Status, number>;
    const counts = zero();
    const byPriority: Record<string, Record<Status, number>> = {};
    for (let priority = MAX_PRIORITY; priority >= MIN_PRIORITY; priority--) byPriority[priority] = zero();
    for (const [field, value] of Object.entries(counters)) {
      const [status, priority] = field.split(':') as [Status, string | undefined];
      const target = priority === undefined ? counts : byPriority[priority];
      if (target && status in target) target[status] = Number(value);
    }
    return {
      counts,
      by_priority: byPriority,
      queue_length: Number(length),
      oldest_queued_age_seconds: oldest === '' ? null : Math.max(0, (Number(now) - Number(oldest)) / 1000),
      finished_last_hour: Number(finished),
    };
  }
}
