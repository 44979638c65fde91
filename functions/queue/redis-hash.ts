/** Conversion between the Redis hash of a request and its JSON representation (pure). */
import type { StageError, Status } from './schemas.js';

export interface QueueRequest {
  request_id: string;
  session_id: string;
  input: { uri: string };
  priority: number;
  params: Record<string, unknown>;
  status: Status;
  attempts: number;
  created_at: string;
  updated_at: string;
  started_at?: string;
  finished_at?: string;
  lease_expires_at?: string;
  stage?: string;
  progress?: number;
  error?: StageError;
  outputs?: Record<string, unknown>;
  /** 1-based place in the queue while QUEUED. */
  position?: number;
}

/** A request as handed to the worker that holds its lease. */
export type LeasedRequest = QueueRequest & { lease_id: string };

/** HGETALL comes back from a script as a flat [field, value, …] array. */
export function pairsToHash(flat: unknown): Record<string, string> {
  const hash: Record<string, string> = {};
  if (!Array.isArray(flat)) return hash;
  for (let i = 0; i + 1 < flat.length; i += 2) hash[String(flat[i])] = String(flat[i + 1]);
  return hash;
}

const isoTime = (ms: string | undefined): string | undefined =>
  ms === undefined ? undefined : new Date(Number(ms)).toISOString();

const json = <T>(text: string | undefined): T | undefined => (text === undefined ? undefined : (JSON.parse(text) as T));

export function hashToRequest(hash: Record<string, string>): QueueRequest {
  const optional = {
    started_at: isoTime(hash.started_at),
    finished_at: isoTime(hash.finished_at),
    lease_expires_at: isoTime(hash.lease_expires_at),
    stage: hash.stage,
    progress: hash.progress === undefined ? undefined : Number(hash.progress),
    error: json<StageError>(hash.error),
    outputs: json<Record<string, unknown>>(hash.outputs),
  };
  const request: QueueRequest = {
    request_id: hash.id ?? '',
    session_id: hash.session_id ?? '',
    input: { uri: hash.input_uri ?? '' },
    priority: Number(hash.priority),
    params: json<Record<string, unknown>>(hash.params) ?? {},
    status: hash.status as Status,
    attempts: Number(hash.attempts),
    created_at: isoTime(hash.created_at) ?? '',
    updated_at: isoTime(hash.updated_at) ?? '',
  };
  for (const [key, value] of Object.entries(optional)) {
    if (value !== undefined) Object.assign(request, { [key]: value });
  }
  return request;
}

export function hashToLeasedRequest(hash: Record<string, string>): LeasedRequest {
  return { ...hashToRequest(hash), lease_id: hash.lease_id ?? '' };
}
