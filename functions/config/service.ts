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
  RUN_EMULATOR_HOST?: string;
  MAX_CONCURRENT_RECONSTRUCTIONS: number;
  DISPATCH_LEASE_SECONDS: number;
  DISPATCH_START_LEASE_SECONDS: number;
  DISPATCH_START_RETRIES: number;
  DISPATCH_RETRY_DELAY_MS: number;
  AUTO_DISPATCH: boolean;
  RECONCILE_BATCH: number;
}

export const schema: JSONSchemaType<ServiceConfig> = {
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
    GOOGLE_CLOUD_PROJECT: {
      description: 'Project of Firestore and the workflow.',
      type: 'string',
      pattern: '^[a-z][a-z0-9-]{4,29}$',
      default: 'splatflow-local',
    },
    AUTH_MODE: {
      description:
        '`google`: the caller is the verified email of a Google ID token; `local`: the trusted header `AUTH_LOCAL_HEADER` names the caller (local runs only).',
      type: 'string',
      enum: ['google', 'local'],
      default: 'google',
    },
    AUTH_AUDIENCE: {
      description: 'Expected ID-token audience (the function URL); unset: any audience.',
      type: 'string',
      minLength: 1,
      nullable: true,
    },
    AUTH_JWKS_URL: {
      description: 'Keys that sign Google ID tokens.',
      type: 'string',
      pattern: '^https?://',
      default: 'https://www.googleapis.com/oauth2/v3/certs',
    },
    AUTH_LOCAL_HEADER: {
      description: 'The header naming the caller when `AUTH_MODE=local`.',
      type: 'string',
      pattern: '^[a-z0-9-]{1,64}$',
      default: 'x-splatflow-caller',
    },
    RATE_LIMIT_PER_MINUTE: {
      description: 'Calls per caller in a sliding 60 s window; beyond it `429` with `Retry-After`.',
      type: 'integer',
      minimum: 1,
      maximum: 100000,
      default: 10,
    },
    DEDUP_WINDOW_SECONDS: {
      description: "How long a repeated call (same `Idempotency-Key`, or same body) answers the first call's request.",
      type: 'integer',
      minimum: 1,
      maximum: 7 * 86400,
      default: 600,
    },
    UPLOADS_PREFIX: {
      description:
        'Where uploads start requests; `uploads/<scope>/<session>/…` (or `uploads/<session>/…`) names the session.',
      type: 'string',
      pattern: '^([A-Za-z0-9._-]+/)*$',
      default: 'uploads/',
    },
    INPUT_LOCATIONS: {
      description:
        'Comma-separated `gs://BUCKET/PREFIX/` folders inputs may come from, each caller only its scope folder under them; the first is where `POST /uploads` signs into. Unset: none in the cloud, any `gs://` with `AUTH_MODE=local`.',
      type: 'string',
      pattern: LOCATIONS_PATTERN,
      nullable: true,
    },
    UPLOAD_MAX_BYTES: {
      description:
        "Larger uploads are refused: signed into upload URLs' length range, and checked again when an upload arrives (default 4 GiB).",
      type: 'integer',
      minimum: 1,
      default: 4 * 1024 ** 3,
    },
    UPLOAD_MAX_DURATION_SECONDS: {
      description:
        "An upload-started request's `params.frames.max_duration_s`: the frames stage refuses a longer video once it probes it.",
      type: 'integer',
      minimum: 1,
      default: 600,
    },
    UPLOAD_STATUS_OBJECTS: {
      description:
        "Write a status object beside each upload, `<UPLOAD_STATUS_PREFIX><upload name>.json` in the upload's bucket.",
      type: 'boolean',
      default: true,
    },
    UPLOAD_STATUS_PREFIX: {
      description:
        'Folder of the upload status objects; must not overlap `UPLOADS_PREFIX` (a status object there would itself be an upload).',
      type: 'string',
      pattern: '^([A-Za-z0-9._-]+/)+$',
      default: 'status/',
    },
    OUTPUT_PREFIX: {
      description: "Requests' work folders, one per request id (`gs://BUCKET/requests/` in the cloud).",
      type: 'string',
      pattern: '^(gs://[a-z0-9._-]{3,222}/|file:///)(.*/)?$',
      default: 'file:///var/tmp/splatflow/requests/',
    },
    STATUS_URL: {
      description: 'Public URL of the `status` function, for the `status_url` answers carry.',
      type: 'string',
      default: '/status',
    },
    SIGNED_URL_TTL_SECONDS: {
      description: 'Lifetime of signed output URLs.',
      type: 'integer',
      minimum: 60,
      maximum: 7 * 86400,
      default: 3600,
    },
    SIGNING_KEY_FILE: {
      description: 'Service-account key file to sign URLs offline (local runs); unset: IAM signBlob.',
      type: 'string',
      nullable: true,
    },
    WEBHOOK_SECRET: {
      description: 'HMAC-SHA256 key that signs webhook deliveries (from Secret Manager); unset: webhooks are refused.',
      type: 'string',
      minLength: 16,
      nullable: true,
    },
    WEBHOOK_RETRIES: {
      description: 'Retries of a failed webhook delivery (network errors, 408, 429, 5xx), with backoff.',
      type: 'integer',
      minimum: 0,
      maximum: 10,
      default: 4,
    },
    WEBHOOK_ALLOW_HTTP: { description: 'Allow `http://` webhooks (local runs).', type: 'boolean', default: false },
    WEBHOOK_ALLOW_HOSTS: {
      description:
        '`host:port,…` webhooks may reach whatever they resolve to (local receivers); refused at start-up unless `AUTH_MODE=local`.',
      type: 'string',
      pattern: '^[^\\s,]+:[0-9]{1,5}(,[^\\s,]+:[0-9]{1,5})*$',
      nullable: true,
    },
    WORKFLOW_LOCATION: {
      description: 'Region of the workflow.',
      type: 'string',
      pattern: '^[a-z0-9-]+$',
      default: 'us-central1',
    },
    WORKFLOW_NAME: {
      description: 'The workflow run per request.',
      type: 'string',
      pattern: '^[A-Za-z][A-Za-z0-9_-]{0,63}$',
      default: 'reconstruct',
    },
    WORKFLOWS_EMULATOR_HOST: {
      description:
        '`host:port` of a local server speaking the Workflows Executions REST API, without credentials (tests, local runs).',
      type: 'string',
      pattern: '^[A-Za-z0-9.-]+:[0-9]+$',
      nullable: true,
    },
    RUN_EMULATOR_HOST: {
      description:
        '`host:port` of a local server speaking the Cloud Run Admin API (job executions), without credentials (tests, local runs).',
      type: 'string',
      pattern: '^[A-Za-z0-9.-]+:[0-9]+$',
      nullable: true,
    },
    MAX_CONCURRENT_RECONSTRUCTIONS: {
      description: 'Most requests PROCESSING at once (GPU capacity).',
      type: 'integer',
      minimum: 1,
      maximum: 1000,
      default: 2,
    },
    DISPATCH_LEASE_SECONDS: {
      description:
        "Lease of a request whose execution runs; Terraform and the local stack set the workflow's worst case (`workflowWorstCaseSeconds`).",
      type: 'integer',
      minimum: 60,
      maximum: 86400,
      default: 86400,
    },
    DISPATCH_START_LEASE_SECONDS: {
      description: "Lease while a request's execution is being created.",
      type: 'integer',
      minimum: 10,
      maximum: 3600,
      default: 120,
    },
    DISPATCH_START_RETRIES: {
      description: 'Retries of an execution start that failed transiently.',
      type: 'integer',
      minimum: 0,
      maximum: 10,
      default: 3,
    },
    DISPATCH_RETRY_DELAY_MS: {
      description: 'First retry delay of an execution start (doubles each retry).',
      type: 'integer',
      minimum: 1,
      maximum: 60000,
      default: 1000,
    },
    AUTO_DISPATCH: {
      description:
        'Dispatch in-process after every enqueue and end; off where workers use `GET /next`, or where only the dispatcher may start workflows.',
      type: 'boolean',
      default: true,
    },
    RECONCILE_BATCH: {
      description: 'Records examined per state per `reconcile` run (the next run resumes where it stopped).',
      type: 'integer',
      minimum: 1,
      maximum: 1000,
      default: 200,
    },
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
