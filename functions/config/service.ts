/**
 * The functions' settings, read from the environment: auth, admission, uploads, outputs, webhooks,
 * workflows and dispatch (the queue's and Redis's are queue.ts's).
 */
import type { JSONSchemaType } from 'ajv';
import { ConfigError, loadConfig } from '../../lib/config.js';
import { LOCATIONS_PATTERN } from '../../lib/locations.js';

export interface ServiceConfig {
  GOOGLE_CLOUD_PROJECT: string;
  AUTH_MODE: 'google' | 'local';
  AUTH_AUDIENCE?: string;
  AUTH_JWKS_URL: string;
  AUTH_LOCAL_HEADER: string;
  RATE_LIMIT_PER_MINUTE: number;
  DEDUP_WINDOW_SECONDS: number;
  UPLOADS_PREFIX: string;
  INPUT_LOCATIONS?: string;
  UPLOAD_MAX_BYTES: number;
  UPLOAD_MAX_DURATION_SECONDS: number;
  UPLOAD_STATUS_OBJECTS: boolean;
  UPLOAD_STATUS_PREFIX: string;
  OUTPUT_PREFIX: string;
  STATUS_URL: string;
  SIGNED_URL_TTL_SECONDS: number;
  SIGNING_KEY_FILE?: string;
  WEBHOOK_SECRET?: string;
  WEBHOOK_RETRIES: number;
  WEBHOOK_ALLOW_HTTP: boolean;
  WEBHOOK_ALLOW_HOSTS?: string;
  WORKFLOW_LOCATION: string;
  WORKFLOW_NAME: string;
  WORKFLOWS_EMULATOR_HOST?: string;
  /** A local server speaking the Cloud Run Admin API (job executions), as WORKFLOWS_EMULATOR_HOST. */
  RUN_EMULATOR_HOST?: string;
  MAX_CONCURRENT_RECONSTRUCTIONS: number;
  /** Terraform and the local stack set the workflow's worst case (`workflowWorstCaseSeconds`). */
  DISPATCH_LEASE_SECONDS: number;
  DISPATCH_START_LEASE_SECONDS: number;
  DISPATCH_START_RETRIES: number;
  DISPATCH_RETRY_DELAY_MS: number;
  AUTO_DISPATCH: boolean;
  RECONCILE_BATCH: number;
}

const schema: JSONSchemaType<ServiceConfig> = {
  type: 'object',
  required: [
    'GOOGLE_CLOUD_PROJECT',
    'AUTH_MODE',
    'AUTH_JWKS_URL',
    'AUTH_LOCAL_HEADER',
    'RATE_LIMIT_PER_MINUTE',
    'DEDUP_WINDOW_SECONDS',
    'UPLOADS_PREFIX',
    'UPLOAD_MAX_BYTES',
    'UPLOAD_MAX_DURATION_SECONDS',
    'UPLOAD_STATUS_OBJECTS',
    'UPLOAD_STATUS_PREFIX',
    'OUTPUT_PREFIX',
    'STATUS_URL',
    'SIGNED_URL_TTL_SECONDS',
    'WEBHOOK_RETRIES',
    'WEBHOOK_ALLOW_HTTP',
    'WORKFLOW_LOCATION',
    'WORKFLOW_NAME',
    'MAX_CONCURRENT_RECONSTRUCTIONS',
    'DISPATCH_LEASE_SECONDS',
    'DISPATCH_START_LEASE_SECONDS',
    'DISPATCH_START_RETRIES',
    'DISPATCH_RETRY_DELAY_MS',
    'AUTO_DISPATCH',
    'RECONCILE_BATCH',
  ],
  properties: {
    GOOGLE_CLOUD_PROJECT: { type: 'string', pattern: '^[a-z][a-z0-9-]{4,29}$', default: 'splatflow-local' },
    AUTH_MODE: { type: 'string', enum: ['google', 'local'], default: 'google' },
    AUTH_AUDIENCE: { type: 'string', minLength: 1, nullable: true },
    AUTH_JWKS_URL: { type: 'string', pattern: '^https?://', default: 'https://www.googleapis.com/oauth2/v3/certs' },
    AUTH_LOCAL_HEADER: { type: 'string', pattern: '^[a-z0-9-]{1,64}$', default: 'x-splatflow-caller' },
    RATE_LIMIT_PER_MINUTE: { type: 'integer', minimum: 1, maximum: 100000, default: 10 },
    DEDUP_WINDOW_SECONDS: { type: 'integer', minimum: 1, maximum: 7 * 86400, default: 600 },
    UPLOADS_PREFIX: { type: 'string', pattern: '^([A-Za-z0-9._-]+/)*$', default: 'uploads/' },
    INPUT_LOCATIONS: { type: 'string', pattern: LOCATIONS_PATTERN, nullable: true },
    UPLOAD_MAX_BYTES: { type: 'integer', minimum: 1, default: 4 * 1024 ** 3 },
    UPLOAD_MAX_DURATION_SECONDS: { type: 'integer', minimum: 1, default: 600 },
    // A status object per upload, `<UPLOAD_STATUS_PREFIX><upload name>.json` in the upload's bucket.
    UPLOAD_STATUS_OBJECTS: { type: 'boolean', default: true },
    UPLOAD_STATUS_PREFIX: { type: 'string', pattern: '^([A-Za-z0-9._-]+/)+$', default: 'status/' },
    OUTPUT_PREFIX: {
      type: 'string',
      pattern: '^(gs://[a-z0-9._-]{3,222}/|file:///)(.*/)?$',
      default: 'file:///var/tmp/splatflow/requests/',
    },
    STATUS_URL: { type: 'string', default: '/status' },
    SIGNED_URL_TTL_SECONDS: { type: 'integer', minimum: 60, maximum: 7 * 86400, default: 3600 },
    SIGNING_KEY_FILE: { type: 'string', nullable: true },
    WEBHOOK_SECRET: { type: 'string', minLength: 16, nullable: true },
    WEBHOOK_RETRIES: { type: 'integer', minimum: 0, maximum: 10, default: 4 },
    WEBHOOK_ALLOW_HTTP: { type: 'boolean', default: false },
    WEBHOOK_ALLOW_HOSTS: { type: 'string', pattern: '^[^\\s,]+:[0-9]{1,5}(,[^\\s,]+:[0-9]{1,5})*$', nullable: true },
    WORKFLOW_LOCATION: { type: 'string', pattern: '^[a-z0-9-]+$', default: 'us-central1' },
    WORKFLOW_NAME: { type: 'string', pattern: '^[A-Za-z][A-Za-z0-9_-]{0,63}$', default: 'reconstruct' },
    WORKFLOWS_EMULATOR_HOST: { type: 'string', pattern: '^[A-Za-z0-9.-]+:[0-9]+$', nullable: true },
    RUN_EMULATOR_HOST: { type: 'string', pattern: '^[A-Za-z0-9.-]+:[0-9]+$', nullable: true },
    MAX_CONCURRENT_RECONSTRUCTIONS: { type: 'integer', minimum: 1, maximum: 1000, default: 2 },
    DISPATCH_LEASE_SECONDS: { type: 'integer', minimum: 60, maximum: 86400, default: 86400 },
    DISPATCH_START_LEASE_SECONDS: { type: 'integer', minimum: 10, maximum: 3600, default: 120 },
    DISPATCH_START_RETRIES: { type: 'integer', minimum: 0, maximum: 10, default: 3 },
    DISPATCH_RETRY_DELAY_MS: { type: 'integer', minimum: 1, maximum: 60000, default: 1000 },
    AUTO_DISPATCH: { type: 'boolean', default: true },
    RECONCILE_BATCH: { type: 'integer', minimum: 1, maximum: 1000, default: 200 },
  },
};

export function loadServiceConfig(env: Record<string, string | undefined> = process.env): ServiceConfig {
  const config = loadConfig(schema, env);
  const [uploads, status] = [config.UPLOADS_PREFIX, config.UPLOAD_STATUS_PREFIX];
  // A status object under the uploads prefix would itself be an upload (and start a request).
  if (config.UPLOAD_STATUS_OBJECTS && (status.startsWith(uploads) || uploads.startsWith(status))) {
    throw new ConfigError(`invalid configuration: UPLOAD_STATUS_PREFIX ${status} overlaps UPLOADS_PREFIX ${uploads}`);
  }
  // The allow-list re-opens private addresses to webhooks: never where callers are strangers.
  if (config.WEBHOOK_ALLOW_HOSTS !== undefined && config.AUTH_MODE !== 'local') {
    throw new ConfigError('invalid configuration: WEBHOOK_ALLOW_HOSTS is only accepted with AUTH_MODE=local');
  }
  return config;
}

/** `WEBHOOK_ALLOW_HOSTS` as the `host:port` entries the webhook check compares (lower case). */
export const webhookAllowList = (config: ServiceConfig): string[] =>
  config.WEBHOOK_ALLOW_HOSTS?.toLowerCase().split(',') ?? [];
