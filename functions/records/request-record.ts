/**
 * The durable request record (Firestore) and the pure rules that change it. Every change is a
 * function of the current record, so the store can apply it inside a transaction and tests can
 * check the rules without a database.
 */
import { randomUUID } from 'node:crypto';
import type { QueueRequest } from '../queue/redis-hash.js';
import { DEFAULT_PRIORITY, type StageError, type Status, type UpdateBody } from '../queue/schemas.js';

/** How a request came in: an authenticated call, an upload event, or the internal queue API. */
export type Origin = 'trigger' | 'preprocess' | 'upload' | 'queue';

/** The uploaded object generation that started a request (origin `upload`). */
export interface UploadRef {
  bucket: string;
  name: string;
  generation: string;
}

export interface StageTiming {
  started_at: string;
  finished_at?: string;
  progress?: number;
}

/** The queue's view of a request (less what only Redis knows), plus what only the record keeps. */
export interface RequestRecord extends Omit<QueueRequest, 'position' | 'lease_expires_at'> {
  owner: string;
  origin: Origin;
  /** Stage name → when it started and finished; the order of `stage` reports. */
  stages: Record<string, StageTiming>;
  /** The lease of the dispatch that holds the request (mirrors the queue's lease). */
  lease_id?: string;
  /** The Workflows execution running the request (`projects/…/executions/…`). */
  execution?: string;
  /** Cloud Run job executions that execution started (`projects/…/jobs/…/executions/…`), oldest first. */
  job_executions?: string[];
  webhook_url?: string;
  /** SHA-256 (hex) of the callback token; the token itself is never stored. */
  token_hash?: string;
  upload?: UploadRef;
}

/** A new QUEUED record. */
export function newRecord(fields: {
  owner: string;
  origin: Origin;
  session_id: string;
  input: { uri: string };
  priority?: number;
  params?: Record<string, unknown>;
  request_id?: string;
  webhook_url?: string;
  token_hash?: string;
  upload?: UploadRef;
}): RequestRecord {
  const now = new Date().toISOString();
  return {
    ...fields,
    request_id: fields.request_id ?? randomUUID(),
    priority: fields.priority ?? DEFAULT_PRIORITY,
    params: fields.params ?? {},
    status: 'QUEUED',
    attempts: 0,
    created_at: now,
    updated_at: now,
    stages: {},
  };
}

export const TERMINAL: ReadonlySet<Status> = new Set(['COMPLETED', 'FAILED', 'CANCELLED']);

const LEGAL: Partial<Record<Status, readonly Status[]>> = {
  QUEUED: ['PROCESSING', 'CANCELLED'],
  // PROCESSING → CANCELLED stops its workflow and job executions (Lifecycle's `cancelled` hook).
  PROCESSING: ['PROCESSING', 'COMPLETED', 'FAILED', 'CANCELLED'],
};

export type Refusal = { kind: 'illegal_transition' | 'lease_mismatch'; current: Status };
export type Change = { kind: 'ok'; record: RequestRecord } | Refusal;

/** Ends the running stage (if another one starts or the request ends) and records progress. */
function stageHistory(record: RequestRecord, stage: string | undefined, progress: number | undefined, now: string) {
  const stages = { ...record.stages };
  const running = record.stage;
  const ending = TERMINAL.has(record.status);
  if (running && stages[running] && (stage !== running || ending) && !stages[running].finished_at) {
    stages[running] = { ...stages[running], finished_at: now };
  }
  if (stage) {
    const timing = stages[stage] ?? { started_at: now };
    stages[stage] = { ...timing, ...(progress === undefined ? {} : { progress }) };
    if (ending && !stages[stage].finished_at) stages[stage] = { ...stages[stage], finished_at: now };
  }
  return stages;
}

/** A status report (the queue's `PUT /status/{id}` body) applied to the record. */
export function applyUpdate(record: RequestRecord, body: UpdateBody, now: string): Change {
  if (!LEGAL[record.status]?.includes(body.status)) return { kind: 'illegal_transition', current: record.status };
  if (body.lease_id !== undefined && record.lease_id !== body.lease_id) {
    return { kind: 'lease_mismatch', current: record.status };
  }
  const next: RequestRecord = { ...record, status: body.status, updated_at: now };
  if (record.status === 'QUEUED' && body.status === 'PROCESSING') {
    next.attempts = record.attempts + 1;
    next.started_at = now;
  }
  if (body.error) next.error = body.error;
  if (body.outputs) next.outputs = body.outputs;
  if (body.progress !== undefined) next.progress = body.progress;
  if (body.job_execution && !record.job_executions?.includes(body.job_execution)) {
    next.job_executions = [...(record.job_executions ?? []), body.job_execution];
  }
  if (TERMINAL.has(body.status)) {
    next.finished_at = now;
    delete next.lease_id;
  }
  next.stages = stageHistory(next, body.stage, body.progress, now);
  if (body.stage) next.stage = body.stage;
  return { kind: 'ok', record: next };
}

/** The dispatcher took the request from the queue under `leaseId`. A finished request is refused. */
export function applyTake(record: RequestRecord, leaseId: string, now: string): Change {
  if (TERMINAL.has(record.status)) return { kind: 'illegal_transition', current: record.status };
  const next: RequestRecord = {
    ...record,
    status: 'PROCESSING',
    attempts: record.attempts + 1,
    lease_id: leaseId,
    started_at: now,
    updated_at: now,
  };
  delete next.execution;
  delete next.job_executions;
  return { kind: 'ok', record: next };
}

/** The workflow execution for the lease `leaseId` was created. */
export function applyExecution(record: RequestRecord, leaseId: string, execution: string, now: string): Change {
  if (record.status !== 'PROCESSING') return { kind: 'illegal_transition', current: record.status };
  if (record.lease_id !== leaseId) return { kind: 'lease_mismatch', current: record.status };
  return { kind: 'ok', record: { ...record, execution, updated_at: now } };
}

/**
 * The execution could not be created (yet): back to QUEUED. The attempt counts, so a start that
 * keeps failing ends after the most attempts instead of being tried forever.
 */
export function applyRelease(record: RequestRecord, leaseId: string, error: StageError, now: string): Change {
  if (record.status !== 'PROCESSING') return { kind: 'illegal_transition', current: record.status };
  if (record.lease_id !== leaseId) return { kind: 'lease_mismatch', current: record.status };
  const next: RequestRecord = { ...record, status: 'QUEUED', error, updated_at: now };
  delete next.lease_id;
  delete next.started_at;
  return { kind: 'ok', record: next };
}

/** The queue found the lease run out and moved the request to `outcome` (its Lua step decided). */
export function applyExpiry(record: RequestRecord, outcome: 'QUEUED' | 'FAILED', now: string): Change {
  if (record.status !== 'PROCESSING') return { kind: 'illegal_transition', current: record.status };
  const error = {
    code: 'LEASE_EXPIRED',
    message: `the workflow stopped reporting; lease expired on attempt ${record.attempts}`,
  };
  const next: RequestRecord = { ...record, status: outcome, error, updated_at: now };
  delete next.lease_id;
  delete next.execution;
  if (outcome === 'FAILED') next.finished_at = now;
  return { kind: 'ok', record: next };
}
