/** External inputs of the request API's functions; TS types are derived from these schemas. */
import type { JSONSchemaType } from 'ajv';
import { enqueueSchema, idPattern } from '../queue/schemas.js';

export interface TriggerBody {
  session_id: string;
  input: { uri: string };
  priority?: number;
  params?: Record<string, unknown>;
  webhook_url?: string;
}

/** The queue's enqueue body, plus where to report the end. */
export const triggerSchema: JSONSchemaType<TriggerBody> = {
  ...enqueueSchema,
  properties: {
    ...enqueueSchema.properties,
    webhook_url: { type: 'string', maxLength: 2048, pattern: '^https?://[^\\s]+$', nullable: true },
  },
} as JSONSchemaType<TriggerBody>;

export interface StatusQuery {
  callback_token: string;
}

export const statusQuerySchema: JSONSchemaType<StatusQuery> = {
  type: 'object',
  additionalProperties: false,
  required: ['callback_token'],
  properties: { callback_token: { type: 'string', minLength: 1, maxLength: 256 } },
};

/** The fields of a `google.cloud.storage.object.v1.finalized` event's data that matter here. */
export interface StorageObjectData {
  bucket: string;
  name: string;
  generation: string;
  size?: string;
  contentType?: string;
  /** Custom metadata (`x-goog-meta-*`): `webhook-url` asks for a webhook when the request ends. */
  metadata?: Record<string, string>;
}

export const storageObjectSchema: JSONSchemaType<StorageObjectData> = {
  type: 'object',
  required: ['bucket', 'name', 'generation'],
  properties: {
    bucket: { type: 'string', pattern: '^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$' },
    name: { type: 'string', minLength: 1, maxLength: 1024 },
    generation: { type: 'string', pattern: '^[0-9]{1,20}$' },
    size: { type: 'string', pattern: '^[0-9]{1,20}$', nullable: true },
    contentType: { type: 'string', maxLength: 256, nullable: true },
    metadata: {
      type: 'object',
      nullable: true,
      required: [],
      additionalProperties: { type: 'string', maxLength: 8192 },
    },
  },
};

export interface UploadBody {
  session_id: string;
  file_name: string;
}

/** `POST /uploads`: where the caller wants to put one file (the scope is never the caller's to choose). */
export const uploadSchema: JSONSchemaType<UploadBody> = {
  type: 'object',
  additionalProperties: false,
  required: ['session_id', 'file_name'],
  properties: {
    session_id: { type: 'string', pattern: idPattern },
    file_name: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$' },
  },
};
