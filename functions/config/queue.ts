/** The queue's settings, read from the environment: the Redis connection, leases, attempts, retention, log level. */
import type { JSONSchemaType } from 'ajv';
import { loadConfig } from '../../lib/config.js';
import { SEVERITIES, type Severity } from '../../lib/log.js';

export interface QueueConfig {
  REDIS_URL?: string;
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

export const schema: JSONSchemaType<QueueConfig> = {
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
    REDIS_URL: {
      description:
        '`redis://` or `rediss://` (TLS) URL of the Redis server; may carry the AUTH password. Wins over `REDIS_INSTANCE` when both are set; one of the two is required.',
      type: 'string',
      pattern: '^rediss?://[^\\s]+$',
      nullable: true,
    },
    REDIS_INSTANCE: {
      description:
        'Memorystore instance `projects/…/locations/…/instances/…` whose host, port, TLS CA and AUTH string are looked up with `@google-cloud/redis`, instead of `REDIS_URL`.',
      type: 'string',
      pattern: '^projects/[a-z0-9-]+/locations/[a-z0-9-]+/instances/[a-z0-9-]+$',
      nullable: true,
    },
    CLOUD_REDIS_EMULATOR_HOST: {
      description:
        '`host:port` of a local server speaking the Memorystore REST API, without credentials (tests, local runs).',
      type: 'string',
      pattern: '^[A-Za-z0-9.-]+:[0-9]+$',
      nullable: true,
    },
    REDIS_PASSWORD: {
      description: "AUTH password; overrides the URL's (from Secret Manager in the cloud).",
      type: 'string',
      nullable: true,
    },
    REDIS_TLS_CA: {
      description: "PEM of the CA that signed the server certificate (Memorystore's in-transit TLS CA).",
      type: 'string',
      pattern: 'BEGIN CERTIFICATE',
      nullable: true,
    },
    REDIS_CONNECT_TIMEOUT_MS: {
      description: 'How long a request waits for a Redis connection before answering 503.',
      type: 'integer',
      minimum: 100,
      maximum: 60000,
      default: 2000,
    },
    REDIS_KEY_PREFIX: {
      description: 'Namespace of all keys (one hash tag, so one cluster slot).',
      type: 'string',
      pattern: '^[A-Za-z0-9_-]{1,32}$',
      default: 'splatflow',
    },
    QUEUE_LEASE_SECONDS: {
      description: 'Default lease of `GET /next` (its `?lease_seconds=` overrides it).',
      type: 'integer',
      minimum: 1,
      maximum: 86400,
      default: 900,
    },
    QUEUE_MAX_ATTEMPTS: {
      description: 'Attempts before a request whose lease keeps expiring is FAILED (`LEASE_EXPIRED`).',
      type: 'integer',
      minimum: 1,
      maximum: 20,
      default: 3,
    },
    QUEUE_RETENTION_SECONDS: {
      description: 'How long finished requests stay in Redis (7 days; the durable record is in Firestore).',
      type: 'integer',
      minimum: 60,
      default: 7 * 86400,
    },
    LOG_LEVEL: {
      description: 'Lowest severity logged; logs are JSON lines Cloud Logging reads.',
      type: 'string',
      enum: [...SEVERITIES],
      default: 'INFO',
    },
  },
};

export const loadQueueConfig = (env: Record<string, string | undefined> = process.env): QueueConfig =>
  loadConfig(schema, env);
