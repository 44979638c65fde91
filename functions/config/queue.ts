/** The queue's settings, read from the environment: the Redis connection, leases, attempts, retention, log level. */
import type { JSONSchemaType } from 'ajv';
import { loadConfig } from '../../lib/config.js';
import { SEVERITIES, type Severity } from '../../lib/log.js';

export interface QueueConfig {
  /** Wins over REDIS_INSTANCE when both are set. */
  REDIS_URL?: string;
  /** Memorystore instance (`projects/…/locations/…/instances/…`) whose endpoint, CA and AUTH are looked up. */
  REDIS_INSTANCE?: string;
  CLOUD_REDIS_EMULATOR_HOST?: string;
  REDIS_PASSWORD?: string;
  REDIS_TLS_CA?: string;
  REDIS_CONNECT_TIMEOUT_MS: number;
  REDIS_KEY_PREFIX: string;
  QUEUE_LEASE_SECONDS: number;
  QUEUE_MAX_ATTEMPTS: number;
  QUEUE_RETENTION_SECONDS: number;
  LOG_LEVEL: Severity;
}

const schema: JSONSchemaType<QueueConfig> = {
  type: 'object',
  anyOf: [{ required: ['REDIS_URL'] }, { required: ['REDIS_INSTANCE'] }],
  required: [
    'REDIS_CONNECT_TIMEOUT_MS',
    'REDIS_KEY_PREFIX',
    'QUEUE_LEASE_SECONDS',
    'QUEUE_MAX_ATTEMPTS',
    'QUEUE_RETENTION_SECONDS',
    'LOG_LEVEL',
  ],
  properties: {
    REDIS_URL: { type: 'string', pattern: '^rediss?://[^\\s]+$', nullable: true },
    REDIS_INSTANCE: {
      type: 'string',
      pattern: '^projects/[a-z0-9-]+/locations/[a-z0-9-]+/instances/[a-z0-9-]+$',
      nullable: true,
    },
    CLOUD_REDIS_EMULATOR_HOST: { type: 'string', pattern: '^[A-Za-z0-9.-]+:[0-9]+$', nullable: true },
    REDIS_PASSWORD: { type: 'string', nullable: true },
    REDIS_TLS_CA: { type: 'string', pattern: 'BEGIN CERTIFICATE', nullable: true },
    REDIS_CONNECT_TIMEOUT_MS: { type: 'integer', minimum: 100, maximum: 60000, default: 2000 },
    REDIS_KEY_PREFIX: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,32}$', default: 'splatflow' },
    QUEUE_LEASE_SECONDS: { type: 'integer', minimum: 1, maximum: 86400, default: 900 },
    QUEUE_MAX_ATTEMPTS: { type: 'integer', minimum: 1, maximum: 20, default: 3 },
    QUEUE_RETENTION_SECONDS: { type: 'integer', minimum: 60, default: 7 * 86400 },
    LOG_LEVEL: { type: 'string', enum: [...SEVERITIES], default: 'INFO' },
  },
};

export const loadQueueConfig = (env: Record<string, string | undefined> = process.env): QueueConfig =>
  loadConfig(schema, env);
