/**
 * The queue service's external inputs. Types are derived from these schemas so the schema is
 * the one source of truth.
 */
import type { JSONSchemaType } from 'ajv';

export const STATUSES = ['QUEUED', 'PROCESSING', 'COMPLETED', 'FAILED', 'CANCELLED'] as const;
export type Status = (typeof STATUSES)[number];

export const MIN_PRIORITY = 0;
export const MAX_PRIORITY = 9;
export const DEFAULT_PRIORITY = 5;

/** Free-form JSON objects (params, outputs) are capped in the body size, not in shape. */
type JsonObject = Record<string, unknown>;

export interface EnqueueBody {
  session_id: string;
  input: { uri: string };
  priority?: number;
  params?: JsonObject;
}

export const idPattern = '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$';

export const enqueueSchema: JSONSchemaType<EnqueueBody> = {
  type: 'object',
  additionalProperties: false,
  required: ['session_id', 'input'],
  properties: {
    session_id: { type: 'string', pattern: idPattern },
    input: {
      type: 'object',
      additionalProperties: false,
      required: ['uri'],
      properties: {
        // gs:// for the cloud, file:// or an absolute path for local runs.
        uri: {
          type: 'string',
          minLength: 1,
          maxLength: 2048,
          pattern: '^(gs://[a-z0-9._-]{3,222}/.+|file:///.+|/.+)$',
        },
      },
    },
    priority: { type: 'integer', minimum: MIN_PRIORITY, maximum: MAX_PRIORITY, nullable: true },
    params: { type: 'object', nullable: true, required: [] },
  },
};

export interface StageError {
  message: string;
  code?: string;
  stage?: string;
}

export interface UpdateBody {
  status: Status;
  stage?: string;
  progress?: number;
  error?: StageError;
  outputs?: JsonObject;
  lease_id?: string;
  /** A Cloud Run job execution the workflow started for this request (cancelled with it). */
  job_execution?: string;
}

export const updateSchema: JSONSchemaType<UpdateBody> = {
  type: 'object',
  additionalProperties: false,
  required: ['status'],
  properties: {
    status: { type: 'string', enum: [...STATUSES] },
    stage: { type: 'string', pattern: '^[a-z][a-z0-9_-]{0,63}$', nullable: true },
    progress: { type: 'number', minimum: 0, maximum: 1, nullable: true },
    error: {
      type: 'object',
      nullable: true,
      additionalProperties: false,
      required: ['message'],
      properties: {
        message: { type: 'string', minLength: 1, maxLength: 4096 },
        code: { type: 'string', maxLength: 128, nullable: true },
        stage: { type: 'string', maxLength: 64, nullable: true },
      },
    },
    outputs: { type: 'object', nullable: true, required: [] },
    lease_id: { type: 'string', minLength: 1, maxLength: 128, nullable: true },
    job_execution: {
      type: 'string',
      maxLength: 512,
      pattern: '^projects/[^/]+/locations/[^/]+/jobs/[^/]+/executions/[^/]+$',
      nullable: true,
    },
  },
};

export interface NextQuery {
  lease_seconds?: number;
}

export const nextQuerySchema: JSONSchemaType<NextQuery> = {
  type: 'object',
  additionalProperties: false,
  properties: {
    lease_seconds: { type: 'integer', minimum: 1, maximum: 86400, nullable: true },
  },
};
